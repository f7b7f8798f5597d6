"""Models generated from contracts/openapi/*.yaml. Never edit by hand: `make contract-models`."""
