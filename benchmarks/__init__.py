"""Side-by-side performance benchmarks of LoRA Playground, run from the repository root.

Each script is started as a module, for example `python -m benchmarks.lora_vs_full --help`. A run prints
readable tables (figures and the ratios between methods measured in the same run) and writes the same
figures, with a description of the machine, as JSON to `--output`. `--quick` makes a tiny smoke run in
seconds (the tests use it); its figures mean nothing. `benchmarks/run_all.sh` runs every full benchmark in
order, and BENCHMARKS.md explains the figures.
"""
