"""Model monitoring: data capture reading, drift statistics against training's reference profile, `mlplat monitor`."""
