"""HTTP views served by the Faust web server of every worker (glue)."""
