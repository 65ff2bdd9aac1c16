"""zoogate: conformance and regression gates for deployed image-classification models."""

__version__ = "0.1.0"
