"""The explorer: a local web page where you draw a digit and watch backprop.

``python -m backprop.explore [RUN]`` serves it (``backprop.app.commands.explore``).
The package is in seven pieces, so the numbers can be read and tested without
a web framework:

* ``session``: the numbers. One example through the model, forward and
  backward, and a copy of the model that Adam steps on that one example.
* ``feature_maps``: a CNN's view in place of an MLP's hidden units: its
  first convolution's feature maps and kernels, and the kernels' gradients.
* ``uploads``: an image file's bytes as the 784 inputs, refusing one too large
  from its header, before any pixel is decoded.
* ``routes``: the Starlette app, a thin JSON API over a ``Session`` (``/api/``)
  and the static page (``static/``: plain HTML, CSS and JavaScript).
* ``request_checks``: who may use it: requests must name this server's address and
  port (``Host``), and come from its own page (``Origin``), so no other
  site open in the same browser can take steps or read the API.
* ``server``: binding the socket and running the app on uvicorn.
* ``firstrun``: without a model, train the paper's for two epochs first.

Importing this package imports neither Starlette nor Pillow.
"""
