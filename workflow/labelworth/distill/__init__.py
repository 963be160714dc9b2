"""The stage that makes image sets: real images chosen at random or by an expert's loss, subsets,
and the synthesis methods (dm, mtt, bptt, sre2l). `registry` says what each method reads and which
function makes it; `labelworth.image_sets` writes every set in one layout. Importing this package
imports no torch (Snakemake reads the registry at parse time)."""
