"""Training data: image-caption sources, batching, masks, and the emoji dataset."""
