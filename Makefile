# mrparotid: `make test` (install + tests), `make demo` (install + phantom + short fit + short
# segmenter fit + diagnose a patient from its series alone).
PYTHON ?= python3
PIP := $(PYTHON) -m pip
# torch: the CPU build where no NVIDIA GPU is present, the normal (CUDA) wheel where one is.
# Elsewhere, point TORCH_INDEX_URL at a CPU wheel index to avoid the CUDA download.
TORCH_CPU_VERSION ?= 2.13.0
TORCH_INDEX_URL ?=
DEMO_DIR ?= demo
DEMO_EPOCHS ?= 20
DEMO_SEG_EPOCHS ?= 15

.PHONY: install dicom-tools test test-fast demo demo-diffusion bench clean

install:
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing the standard torch wheel"; \
		$(PIP) install -q "torch>=2.1"; \
	else \
		echo "no GPU: installing the CPU build of torch $(TORCH_CPU_VERSION)"; \
		$(PIP) install -q "torch==$(TORCH_CPU_VERSION)" $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL)); \
	fi
	$(PIP) install -q -e ".[test]"

# dcmtk (storescu, storescp) and dicom3tools (dciodvfy) for the DICOM node's end-to-end test and
# the SEG/SR validation: from apt where it is there and we are root, else skipped quietly (the
# tests then use pynetdicom and skip dciodvfy).
dicom-tools:
	@if ! command -v dcmdump >/dev/null 2>&1 || ! command -v dciodvfy >/dev/null 2>&1; then \
		if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dcmtk dicom3tools) \
				>/dev/null 2>&1 || echo "note: dcmtk/dicom3tools not installed (DICOM tests use pynetdicom, skip dciodvfy)"; \
		fi; \
	fi

test: install dicom-tools
	$(PYTHON) -m pytest -q

test-fast: install dicom-tools
	$(PYTHON) -m pytest -q -m "not slow"

demo: install
	$(PYTHON) tools/demo.py --dir $(DEMO_DIR) --epochs $(DEMO_EPOCHS) --seg-epochs $(DEMO_SEG_EPOCHS)

# the demo, then the three series with and without ADC on one split (what diffusion adds)
demo-diffusion: install
	$(PYTHON) tools/demo.py --dir $(DEMO_DIR) --epochs $(DEMO_EPOCHS) --seg-epochs $(DEMO_SEG_EPOCHS) --diffusion

bench: install
	$(PYTHON) tools/bench.py data
	$(PYTHON) tools/bench.py train
	$(PYTHON) tools/bench.py diagnose
	$(PYTHON) tools/bench.py segment

clean:
	rm -rf $(DEMO_DIR) runs .pytest_cache
