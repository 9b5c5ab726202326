"""qaflow: asynchronous LLM question answering with a BERTScore quality gate."""

__version__ = "0.1.0"
