"""What a run leaves behind: the model card (`model.json`, also inside the model file) and the run
folder (its lock, staging and swap)."""
