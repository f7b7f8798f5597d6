"""Models generated from src/bookwell/contract/openapi/*.yaml. Never edit by hand: `make contract-models`."""
