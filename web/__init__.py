"""The web service: the codec server now; the pages through which people answer cases next."""
