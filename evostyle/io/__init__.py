"""Files on disk: images in and out, atomic writes and strict JSON, run directories (marker, lock,
layout), run logs and state, and the bundled sample images."""
