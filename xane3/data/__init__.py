"""Data: readers, normalisation, the ASE database, graphs and batches."""
