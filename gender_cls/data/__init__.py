"""Images in: read any image file, index class folders into splits, build tf.data pipelines, make
the demo set; `augment/` changes images."""
