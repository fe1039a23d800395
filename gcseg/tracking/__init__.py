"""Stage 2 data: granularity-consistent mask tracking (Algorithm 1 reconstruction) and lifting to 3D.

``policy`` (object life cycle, backend-free), ``propagators`` (backend protocol + registry), ``reprojection``
(CPU, depth + poses), ``sam2_backend`` (SAM2 video predictor), ``run`` (the loop over a scan, lifting),
``consistency`` (temporal label consistency against GT), ``artifact`` (the per-scene HDF5 of the stage).
"""
