"""Using a trained model on new images: the Python API, the prediction CLI and the web app share it.

inputs (what to predict on) → preprocess (the card's channels, size, crop) → dataset (decoding in
DataLoader workers) → predictor (device, batch pipeline, model, probabilities) → decision (argmax or
the stored two-class threshold) → results (the returned type) → table (the CSV). Beside them:
progress (console), model_info (the card and run for people), cam (the seam to ignite_cv.explain),
web (the Gradio app), api (``load_model``, ``predict``).
"""
