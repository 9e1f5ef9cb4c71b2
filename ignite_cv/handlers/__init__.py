"""Event handlers: one small class per concern, attached to trainer or evaluator events."""
