"""Stage 3 data: turn a trained model's full-scene predictions into point pseudo-labels.

``select`` keeps confident masks, ``split`` cuts spatially disconnected masks into fragments (DBSCAN),
``resolve`` gives every point to one mask, ``full_scene`` runs the chain on one scene and writes its HDF5.
"""
