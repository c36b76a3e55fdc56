"""What both HTTP adapters share: JSON bodies within limits, one error shape, the server."""
