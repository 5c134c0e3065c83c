"""The convolution algorithms behind :mod:`filterbank.functional.conv`, one module per concern.

* ``geometry``: argument normalisation (``_ntuple``, ``_padding_pairs``) and ``_Geometry``,
  the shapes of one convolution and its per-kernel-offset slice plans;
* ``chunking``: how a batch is cut into chunks and dealt to worker threads (with their
  scratch buffers), and the memory budget for intermediates kept from forward
  (``KEEP_BYTES``);
* ``winograd43``, ``winograd``, ``toeplitz``, ``shifted``, ``im2col``: the algorithms;
* ``registry``: the list of algorithms, each with the rule that says where it applies and
  the measured rule that picks it (add new algorithms there).

Buffers come from :mod:`filterbank._workspace`, threads from :mod:`filterbank._parallel`.
"""
