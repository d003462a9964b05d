"""lstm-madness: can an LSTM on past returns predict tomorrow well enough to trade?"""

__version__ = "0.1.0"
