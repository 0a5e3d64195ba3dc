"""Create side, step 3: per-instance transforms — decoding, compression, coercion, key repair."""
