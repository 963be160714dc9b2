"""labelworth: soft labels vs distilled images, as a cached Snakemake workflow.

The package does the work and knows nothing about Snakemake; `labelworth.cli` is the thin shell the
rules call. Modules that Snakemake imports at parse time (`specs`, `config`) must not import torch.
"""

__version__ = "0.1.0"
