"""The README's table of shipped models, from the figures scripts/measure_models.py recorded in models/manifest.json.

    python scripts/models_table.py

One row per model: its target, its own rate and quality (latent step 1) and
its mean PSNR under `-r` at the paper's rates, on the eval scenes of at least
256x256, and the latent refinement its files were coded with (0 for figures
measured before `--refine` existed). In each `-r` column, the model
`compress -r` takes is in bold.
"""
from __future__ import annotations

from hsicodec.checkpoints import find_model, read_manifest

RATES = (0.2, 0.4, 0.6, 0.8, 1.0)


def main() -> None:
    entries = sorted(read_manifest(), key=lambda e: (e.front_end != "klt", e.arch, e.target_bpp, e.name))
    chosen = {rate: find_model(rate=rate).name for rate in RATES}
    print("| model | target bpp | `--refine` | own rate (Δ = 1): bpp | PSNR dB | SAM deg | "
          + " | ".join(f"`-r {rate:g}`" for rate in RATES) + " |")
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(RATES))
    for e in entries:
        own = e.metrics["large_mean"]
        curve = {p["rate"]: p["psnr"] for p in e.metrics.get("curve", [])}
        cells = []
        for rate in RATES:
            cell = f"{curve[rate]:.2f}" if rate in curve else "—"
            cells.append(f"**{cell}**" if chosen[rate] == e.name else cell)
        label = e.name if e.front_end == "klt" else f"{e.name} (`{e.front_end}`)"
        refine = e.metrics.get("refine_iterations", 0)
        print(f"| {label} | {e.target_bpp:g} | {refine} | {own['bpp']:.3f} | {own['psnr']:.2f} | {own['sam']:.2f} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
