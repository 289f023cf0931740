"""mlplat: a governed ML platform on AWS (Pulumi components) and the tools to plan, check, price and run it."""
