"""Image files and photos of pages to 28x28 inputs.

``ink`` (light, texture, threshold), ``segment`` (the pieces of ink, digits
found and ordered), ``prepare`` (cropped, scaled and centred as MNIST was).
"""
