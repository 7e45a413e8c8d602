"""The ML stack's parts: MLflow tracking, model files and the types they may hold."""
