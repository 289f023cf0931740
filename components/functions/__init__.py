"""Code that runs inside AWS (Lambda), packaged by components as asset archives: standard library and boto3 only."""
