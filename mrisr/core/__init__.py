"""What every part of the tools stands on: whole-or-nothing files and JSON (files.py), model files that
never hold a NaN weight (model_files.py), checkpoints and run locks (checkpoints.py, locks.py), a training
run's shared book-keeping and callbacks (runs.py, callbacks.py), precision by a timed trial
(precision.py), several devices (distribution.py), safe .npy reading (safe_npy.py), the machine in one
line (machine.py), TensorFlow's start-up lines hidden (quiet.py)."""
