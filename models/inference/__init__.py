"""From sounds to codes and back: item layout, encoding a dataset, decoding codes to sound."""
