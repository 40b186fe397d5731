"""Networks: the backbone registry (one row per backbone), the classifier built on a backbone, and
network builders; `weights/` loads foreign weights."""
