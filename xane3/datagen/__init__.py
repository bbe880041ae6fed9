"""FEFF10 data-set generator: Fe-oxide slabs -> Fe K-edge XANES shards (issue 3)."""
