"""Faces in photos: detectors (BlazeFace, MTCNN), alignment to a template, the per-thread cropper
and the crop cache."""
