"""jaxdeblur."""
