"""Numbers without a runtime: checkpoints, tensors and their wire, layouts undone, digests, tensor differences."""
