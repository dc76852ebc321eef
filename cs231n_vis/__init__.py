"""cs231n_vis: the helper package of the cs231n-vis course (what ConvNets learn).

One module per topic; plumbing in models, images, hooks and plotting.
"""

__version__ = "0.1.0"
