# ltc-deno — the whole job as file targets.
#
#   make pipeline                      embedded synthetic benchmark (SCALE=default), results/default_part1_test/
#   make pipeline SCALE=small          300 identities per split (~20K samples each), about 1.5 minutes
#   make pipeline SCALE=part1          full-size synthetic benchmark (584K test / 576K train)
#   make pipeline SCALE=3 CKPT=…       the seed's scale table: part3_test (3 parts, ≈1.76M); also 5, 7, 9 (≈5.3M)
#   make pipeline DATA=dir NAME=part1_test [TRAIN=part0_train] [CKPT=model.pth] [DIM=256] [FEAT_OPTS=--center]
#   make real                          the CelebA face-api embeddings of ../shared/data/real (identity split)
#   make slurm-pipeline CKPT=…         the same job on a Slurm cluster: kNN and GCN-D detection as job arrays
#                                      (KNN_SHARDS=4 DETECT_SHARDS=2 SLURM_OPTS="--partition p --mem 16G --wait")
#   make test                          the tests; prints "N passed, N failed"
#
# Every target is an artifact. Parameters live in file names (kNN k, thresholds, baseline parameters, as the
# original names them) or in YAML configs that are prerequisites, so changing one reruns only what depends on it;
# the stages also record params and input hashes in sidecars and never reuse a stale artifact.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eo pipefail -c
.DELETE_ON_ERROR:
DENO := bin/deno
TIME ?=
RUNSTAGE = $(TIME) $(DENO) run -A stages/$(1).ts
INSTALLED := node_modules/.package-lock.json

SHARED ?= ../shared
SCALE ?= default
SEED ?= 42
SYNTH_ROOT ?= data/synth
RESULTS_ROOT ?= results
DATA ?= $(SYNTH_ROOT)/$(SCALE)
# the seed's scale table: SCALE=3|5|7|9 tests on part<n>_test (n part1-sized parts), trained on part0_train
NAME ?= $(if $(filter 3 5 7 9,$(SCALE)),part$(SCALE)_test,part1_test)
TRAIN ?= part0_train
CKPT ?=
K ?= 80
DIM ?= 256
FEAT_OPTS ?=
RUN ?= $(notdir $(DATA))_$(NAME)
RESULTS := $(RESULTS_ROOT)/$(RUN)

# make splits targets at spaces: refuse such paths with one clear line instead of failing half-way
$(foreach v,DATA NAME TRAIN CKPT RESULTS_ROOT SYNTH_ROOT SHARED,$(if $(word 2,$($(v))),$(error $(v)='$($(v))' contains a space; make cannot handle such paths: use a path without spaces (a symlink will do))))

# proposal parameter sets (configs/proposals/*.yaml)
TRAIN_PROPOSALS ?= train_ms1m_4_prpsls
TEST_SETS := ms1m_2_prpsls train_ms1m_4_prpsls ms1m_2_prpsls_iter1
GCN_TRAIN_CFG ?= configs/gcn_d/cfg_pipeline_train.yaml

FEATS := $(DATA)/features/$(NAME).bin
LABELS := $(DATA)/labels/$(NAME).meta
# kNN of the test split: exact (faiss_k_<k>.npz) up to part1 size; the IVF index (ivf_k_<k>.npz, recall@80 ≥ 0.99
# at the defaults, README) for the seed's scale table, where exact search would take 16 h at 5.21M rows on 2 cores.
# The training split's is always exact. The file stem is the method name every downstream stage's folders carry.
KNN_METHOD ?= $(if $(filter 3 5 7 9,$(SCALE)),ivf,faiss)
KNN := $(DATA)/knns/$(NAME)/$(KNN_METHOD)_k_$(K).npz
PROPS := $(DATA)/cluster_proposals
CKPT_FILE := $(if $(CKPT),$(CKPT),$(RESULTS)/gcn_d_model/latest.npz)
# one label file per row of the results table
ARO_OUT := $(RESULTS)/baselines/$(NAME)_knn_aro_$(KNN_METHOD)_k_$(K)_th_0.0/pred_labels.txt
# the seed's MiniBatchKMeans: 5,000 clusters at MS1M part1 size (584,013 faces), scaled to this set's size. The
# number is known once the labels exist, so `pipeline` builds the report in a second make, where they do.
KMEANS_N = $(if $(wildcard $(LABELS)),$(shell echo $$(( (5000 * $$(wc -l < $(LABELS)) + 292006) / 584013 ))),0)
KMEANS_OUT = $(RESULTS)/baselines/$(NAME)_mini_batch_kmeans_n_$(KMEANS_N)_bs_100/pred_labels.txt
CW_OUT := $(RESULTS)/baselines/$(NAME)_chinese_whispers_$(KNN_METHOD)_k_$(K)_th_0.6_iters_20/pred_labels.txt
DBSCAN_OUT := $(RESULTS)/baselines/$(NAME)_knn_dbscan_eps_0.7_min_40_$(KNN_METHOD)_k_$(K)_th_0.7/pred_labels.txt
# an extra row: KNN-DBSCAN with parameters tuned on this benchmark (shows how much its table row depends on tuning)
DBSCAN_TUNED_OUT := $(RESULTS)/baselines/$(NAME)_knn_dbscan_eps_0.25_min_1_$(KNN_METHOD)_k_$(K)_th_0.0/pred_labels.txt
# kNN + Infomap: the similarity threshold was chosen on the default training split's labels (README), never the test's
INFOMAP_TH ?= 0.6
INFOMAP_OUT := $(RESULTS)/baselines/$(NAME)_infomap_$(KNN_METHOD)_k_$(K)_th_$(INFOMAP_TH)_trials_1/pred_labels.txt
HAC_OUT := $(RESULTS)/baselines/$(NAME)_fast_hac_dist_0.72_hmethod_single/pred_labels.txt
CDP_OUT := $(RESULTS)/baselines/$(NAME)_cdp_$(KNN_METHOD)_k_$(K)_th_0.7_maxsz_600_step_0.05/pred_labels.txt
GCN2_OUT := $(RESULTS)/gcn_d_ms1m_2_prpsls/pred_labels.txt
GCN4_OUT := $(RESULTS)/gcn_d_train_ms1m_4_prpsls/pred_labels.txt
GCNI_OUT := $(RESULTS)/gcn_d_ms1m_2_prpsls_iter1/pred_labels.txt
UB_OUT := $(RESULTS)/upper_bound/ub_th_iou_1_pos_-1_pred_labels.txt

.PHONY: install test check bench pipeline real clean slurm-pipeline

$(INSTALLED): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(INSTALLED)

install: $(INSTALLED)

# Skipped (ignored) tests are counted and named by file: differential tests skip without ../shared, WGSL tests
# without a WebGPU adapter. LTC_REQUIRE_SHARED=1 (.ci/run sets it) turns a missing ../shared into a failure.
test: $(INSTALLED)
	log=$$(mktemp)
	status=0
	NO_COLOR=1 $(DENO) test -A tests/ 2>&1 | tee "$$log" || status=$$?
	line=$$(grep -aE '^(ok|FAILED) \|' "$$log" | tail -n 1 || true)
	passed=$$(echo "$$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || echo 0)
	failed=$$(echo "$$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || echo 0)
	skipped=$$(echo "$$line" | grep -oE '[0-9]+ ignored' | grep -oE '[0-9]+' || echo 0)
	groups=$$(awk '/^running [0-9]+ tests? from /{f=$$NF} / \.\.\. ignored/{n[f]++} END{for(f in n) printf "%s%s: %d", (s++?", ":""), f, n[f]}' "$$log")
	rm -f "$$log"
	if [ -z "$$line" ]; then echo "0 passed, 1 failed"; exit 1; fi
	if [ "$${skipped:-0}" -gt 0 ]; then echo "skipped: $$groups (differential tests need ../shared, WGSL tests a WebGPU adapter)"; fi
	echo "$${passed:-0} passed, $${failed:-0} failed, $${skipped:-0} skipped"
	exit $$status

check: $(INSTALLED)
	$(DENO) task check

bench: $(INSTALLED)
	$(DENO) task bench

clean:
	rm -rf data/synth results

# ---------------------------------------------------------------- data: the embedded synthetic benchmark
$(SYNTH_ROOT)/%/features/part0_train.bin $(SYNTH_ROOT)/%/labels/part0_train.meta $(SYNTH_ROOT)/%/features/$(NAME).bin $(SYNTH_ROOT)/%/labels/$(NAME).meta: | $(INSTALLED)
	$(call RUNSTAGE,synth) --prefix $(SYNTH_ROOT)/$* --scale $* --seed $(SEED) --test-name $(NAME)

# ---------------------------------------------------------------- kNN graphs (exact, faiss-compatible files)
$(DATA)/knns/%/faiss_k_$(K).npz: $(DATA)/features/%.bin | $(INSTALLED)
	$(call RUNSTAGE,knn) --prefix $(DATA) --name $* --k $(K) --dim $(DIM) $(FEAT_OPTS)

$(DATA)/knns/%/ivf_k_$(K).npz: $(DATA)/features/%.bin | $(INSTALLED)
	$(call RUNSTAGE,knn) --prefix $(DATA) --name $* --k $(K) --dim $(DIM) $(FEAT_OPTS) --method ivf

# ---------------------------------------------------------------- proposals: one list of folders per config
# $(1) = dataset name, $(2) = config name, $(3) = kNN method (overrides the config's iteration-0 knn_method); the list
# file carries the method, so a list made on the exact kNN file never stands in for the IVF one's (or back)
define proposal_rule
$(PROPS)/$(1)/$(2).$(3).folders: configs/proposals/$(2).yaml $(DATA)/knns/$(1)/$(3)_k_$(K).npz $(DATA)/features/$(1).bin
	mkdir -p $$(@D)
	$(call RUNSTAGE,proposals) --prefix $(DATA) --name $(1) --dim $(DIM) $(FEAT_OPTS) --knn-method $(3) --config $$< > $$@.tmp
	mv $$@.tmp $$@
endef
$(foreach s,$(TEST_SETS),$(eval $(call proposal_rule,$(NAME),$(s),$(KNN_METHOD))))
# the sets of one split share threshold folders (and iter-1 writes inside iter-0's): build them one after another
# even under make -j, in the order the list gives
$(foreach i,2 3,$(eval $(PROPS)/$(NAME)/$(word $(i),$(TEST_SETS)).$(KNN_METHOD).folders: | $(PROPS)/$(NAME)/$(word $(shell expr $(i) - 1),$(TEST_SETS)).$(KNN_METHOD).folders))
$(if $(filter $(TRAIN_PROPOSALS),$(TEST_SETS)),,$(eval $(call proposal_rule,$(NAME),$(TRAIN_PROPOSALS),$(KNN_METHOD))))
$(eval $(call proposal_rule,$(TRAIN),$(TRAIN_PROPOSALS),faiss))

# ---------------------------------------------------------------- GCN-D training (skipped when CKPT is given)
$(RESULTS)/gcn_d_model/cfg_train.yaml: $(GCN_TRAIN_CFG) $(PROPS)/$(TRAIN)/$(TRAIN_PROPOSALS).faiss.folders
	mkdir -p $(@D)
	{ sed 's/feature_dim: [0-9]*/feature_dim: $(DIM)/' $<
	  printf 'train_data:\n  wo_weight: false\n  feat_path: features/$(TRAIN).bin\n'
	  printf '  label_path: labels/$(TRAIN).meta\n  proposal_folders:\n'
	  sed 's|^$(DATA)/|    - |' $(PROPS)/$(TRAIN)/$(TRAIN_PROPOSALS).faiss.folders; } > $@.tmp
	mv $@.tmp $@

$(RESULTS)/gcn_d_model/latest.npz: $(RESULTS)/gcn_d_model/cfg_train.yaml $(DATA)/features/$(TRAIN).bin $(DATA)/labels/$(TRAIN).meta
	$(call RUNSTAGE,train) --config $< --prefix $(DATA) --work-dir $(@D) --seed $(SEED) $(FEAT_OPTS)

# ---------------------------------------------------------------- GCN-D detection + de-overlap, one per test set
$(RESULTS)/gcn_d_%/pred_labels.txt: $(PROPS)/$(NAME)/%.$(KNN_METHOD).folders $(CKPT_FILE) $(FEATS)
	$(call RUNSTAGE,detect) --feat-path $(FEATS) --label-path $(LABELS) --dim $(DIM) $(FEAT_OPTS) \
	  --load-from $(CKPT_FILE) --work-dir $(@D) $$(sed 's/^/--proposal-folders /' $<)

# ---------------------------------------------------------------- GCN-D upper bound over the 4 threshold sets
$(UB_OUT): $(PROPS)/$(NAME)/train_ms1m_4_prpsls.$(KNN_METHOD).folders $(LABELS)
	$(call RUNSTAGE,upper_bound) --gt-labels $(LABELS) --output-folder $(@D) --output-name ub \
	  $$(sed 's|/proposals/*$$|/pred_labels.txt|; s/^/--cluster-path /' $<)

# ---------------------------------------------------------------- baselines (output folders named as the original)

BASE := $(call RUNSTAGE,baseline) --prefix $(DATA) --name $(NAME) --dim $(DIM) $(FEAT_OPTS) --oprefix $(RESULTS)/baselines \
  --knn-method $(KNN_METHOD)
$(ARO_OUT): $(KNN)
	$(BASE) --method knn_aro --knn $(K) --th-sim 0
$(KMEANS_OUT): $(FEATS) $(LABELS)
	$(BASE) --method mini_batch_kmeans --n-clusters $(KMEANS_N) --batch-size 100
$(DBSCAN_OUT): $(KNN)
	$(BASE) --method knn_dbscan --knn $(K) --th-sim 0.7 --eps 0.7 --min-samples 40
$(DBSCAN_TUNED_OUT): $(KNN)
	$(BASE) --method knn_dbscan --knn $(K) --th-sim 0 --eps 0.25 --min-samples 1
$(INFOMAP_OUT): $(KNN)
	$(BASE) --method infomap --knn $(K) --th-sim $(INFOMAP_TH) --trials 1
$(HAC_OUT): $(FEATS)
	$(BASE) --method fast_hac --distance 0.72
$(CDP_OUT): $(KNN)
	$(BASE) --method cdp --knn $(K) --th-sim 0.7 --max-sz 600 --step 0.05
$(CW_OUT): $(KNN)
	$(BASE) --method chinese_whispers --knn $(K) --th-sim 0.6 --iters 20

# ================================================================ GCN-V / GCN-E (vegcn) — maintained with issue #15
# CPU schedules (configs/gcn_v/cfg_pipeline_train_gcnv.yaml, configs/gcn_e/cfg_pipeline_train_gcne.yaml; README
# "GCN-V / GCN-E"): GCN-V trained on the training split, its outputs (confidences, GCN features and their kNN) for
# both splits, GCN-E trained on the training split's and tested on the test split's. Two report rows.
GCNV_TRAIN_CFG ?= configs/gcn_v/cfg_pipeline_train_gcnv.yaml
GCNE_CFG ?= configs/gcn_e/cfg_pipeline_train_gcne.yaml
GCNV_MODEL := $(RESULTS)/gcn_v_model/latest.npz
GCNE_MODEL := $(RESULTS)/gcn_e_model/latest.npz
# test-gcn-v's output folder of split $(1)
gcnv_dir = $(RESULTS)/gcn_v/$(1)_gcnv_k_$(K)_th_0.0
GCNV_OUT := $(call gcnv_dir,$(NAME))/tau_0.65_pred_labels.txt
GCNE_OUT := $(RESULTS)/gcn_e/$(NAME)_gcne_k_80_th_0.0_ig_0.8/tau_0.8_pred_labels.txt
VEGCN_OUTS := $(GCNV_OUT) $(GCNE_OUT)

$(GCNV_MODEL): $(GCNV_TRAIN_CFG) $(DATA)/features/$(TRAIN).bin $(DATA)/labels/$(TRAIN).meta $(DATA)/knns/$(TRAIN)/faiss_k_$(K).npz
	$(call RUNSTAGE,train_gcn_v) --config $< --prefix $(DATA) --name $(TRAIN) --dim $(DIM) $(FEAT_OPTS) \
	  --work-dir $(@D) --seed $(SEED)

# GCN-V on a split: pred_confs/latest.npz, tau_0.65_pred_labels.txt, features/latest.bin and its kNN (GCN-E's input)
$(RESULTS)/gcn_v/%_gcnv_k_$(K)_th_0.0/tau_0.65_pred_labels.txt: $(GCNV_MODEL) $(DATA)/features/%.bin $(DATA)/knns/%/faiss_k_$(K).npz
	$(call RUNSTAGE,test_gcn_v) --prefix $(DATA) --name $* --dim $(DIM) $(FEAT_OPTS) --knn $(K) --load-from $< \
	  --work-dir $(RESULTS)/gcn_v --use-gcn-feat

$(GCNE_MODEL): $(GCNE_CFG) $(call gcnv_dir,$(TRAIN))/tau_0.65_pred_labels.txt $(DATA)/labels/$(TRAIN).meta
	$(call RUNSTAGE,train_gcn_e) --config $< --work-dir $(@D) --seed $(SEED) \
	  --feat-path $(call gcnv_dir,$(TRAIN))/features/latest.bin --pred-confs $(call gcnv_dir,$(TRAIN))/pred_confs/latest.npz \
	  --label-path $(DATA)/labels/$(TRAIN).meta

$(GCNE_OUT): $(GCNE_CFG) $(GCNE_MODEL) $(GCNV_OUT) $(LABELS)
	$(call RUNSTAGE,test_gcn_e) --config $< --name $(NAME) --load-from $(GCNE_MODEL) --work-dir $(RESULTS)/gcn_e \
	  --feat-path $(call gcnv_dir,$(NAME))/features/latest.bin --pred-confs $(call gcnv_dir,$(NAME))/pred_confs/latest.npz \
	  --label-path $(LABELS)
# ================================================================ end of GCN-V / GCN-E

# ---------------------------------------------------------------- the results table and report
$(RESULTS)/report.md: $(ARO_OUT) $(KMEANS_OUT) $(CW_OUT) $(DBSCAN_OUT) $(DBSCAN_TUNED_OUT) $(HAC_OUT) $(CDP_OUT) $(INFOMAP_OUT) $(GCN2_OUT) $(GCN4_OUT) $(GCNI_OUT) $(UB_OUT) $(VEGCN_OUTS) $(LABELS)
	$(call RUNSTAGE,report) --run-dir $(RESULTS) --gt-labels $(LABELS) --title "$(RUN)" \
	  --method "ARO (k=$(K), th=0)=$(ARO_OUT)" \
	  --method "MiniBatchKMeans (n=$(KMEANS_N), bs=100)=$(KMEANS_OUT)" \
	  --method "Chinese Whispers (k=$(K), th=0.6, iters=20)=$(CW_OUT)" \
	  --method "KNN-DBSCAN (k=$(K), th=0.7, eps=0.7, min=40)=$(DBSCAN_OUT)" \
	  --method "KNN-DBSCAN tuned here (th=0, eps=0.25, min=1)=$(DBSCAN_TUNED_OUT)" \
	  --method "FastHAC (dist=0.72, single)=$(HAC_OUT)" \
	  --method "CDP (single model, th=0.7)=$(CDP_OUT)" \
	  --method "kNN + Infomap (k=$(K), th=$(INFOMAP_TH))=$(INFOMAP_OUT)" \
	  --method "GCN-D (0.7, 0.75)=$(GCN2_OUT)" \
	  --method "GCN-D (0.6, 0.65, 0.7, 0.75)=$(GCN4_OUT)" \
	  --method "GCN-D (0.7, 0.75) + iter1 (0.4, 2, 16)=$(GCNI_OUT)" \
	  --method "GCN upper bound (0.6, 0.65, 0.7, 0.75)=$(UB_OUT)" \
	  --method "GCN-V=$(GCNV_OUT)" \
	  --method "GCN-V + GCN-E=$(GCNE_OUT)"

# the seed's scale table (SCALE=3|5|7|9): its rows only — CDP and GCN-D with two and four proposal sets — plus the
# upper bound and kNN + Infomap (FastHAC, MiniBatchKMeans and the GCN-V/E rows are left out at millions of rows)
$(RESULTS)/scale_report.md: $(CDP_OUT) $(GCN2_OUT) $(GCN4_OUT) $(UB_OUT) $(INFOMAP_OUT) $(LABELS)
	$(call RUNSTAGE,report) --run-dir $(RESULTS) --gt-labels $(LABELS) --title "$(RUN) ($(KNN_METHOD) kNN)" \
	  --method "CDP (single model, th=0.7)=$(CDP_OUT)" \
	  --method "GCN-D (0.7, 0.75)=$(GCN2_OUT)" \
	  --method "GCN-D (0.6, 0.65, 0.7, 0.75)=$(GCN4_OUT)" \
	  --method "GCN upper bound (0.6, 0.65, 0.7, 0.75)=$(UB_OUT)" \
	  --method "kNN + Infomap (k=$(K), th=$(INFOMAP_TH))=$(INFOMAP_OUT)"
	cp $(RESULTS)/report.md $@

# independent stages run side by side (JOBS at a time: most baselines and parts of training use one core); every
# stage is deterministic on its own, so the artifacts do not depend on JOBS. At scales 5-9 one at a time: a stage's
# memory grows with the rows (scale 3: 3-4 GB each after the kNN), and two side by side at 5.2M rows would pass the
# 20 GB a 24 GB machine can give.
JOBS ?= $(if $(filter 5 7 9,$(SCALE)),1,$(shell nproc 2>/dev/null || echo 2))
pipeline: $(FEATS) $(LABELS)
	@$(MAKE) -j$(JOBS) --no-print-directory $(RESULTS)/$(if $(filter 3 5 7 9,$(SCALE)),scale_report.md,report.md)

# ---------------------------------------------------------------- the same job on a Slurm cluster (slurm/submit.ts)
# Synthesises $(DATA) when SCALE names a synthetic world and its features are missing; GCN-D is not trained on the
# cluster: give CKPT (e.g. a checkpoint `make pipeline` trained, or the original's .pth). DATA and RESULTS_ROOT must
# be on a filesystem every node sees.
KNN_SHARDS ?= 4
DETECT_SHARDS ?= 2
SLURM_OPTS ?=
slurm-pipeline: | $(INSTALLED)
	@test -n "$(CKPT)" || { echo "error: slurm-pipeline needs CKPT=<GCN-D checkpoint> (train one with make $(RESULTS)/gcn_d_model/latest.npz)" >&2; exit 2; }
	$(DENO) run -A slurm/submit.ts --data $(DATA) --name $(NAME) --results $(RESULTS) --load-from $(CKPT) \
	  --k $(K) --dim $(DIM) $(FEAT_OPTS) --knn-shards $(KNN_SHARDS) --detect-shards $(DETECT_SHARDS) \
	  $(if $(and $(filter $(SYNTH_ROOT)/$(SCALE),$(DATA)),$(if $(wildcard $(FEATS)),,x)),--scale $(SCALE) --seed $(SEED)) $(SLURM_OPTS)

real:
	@test -f $(SHARED)/data/real/features/celeba6300_faceapi128.bin || { echo "error: $(SHARED)/data/real/features/celeba6300_faceapi128.bin: no such file (set SHARED=<folder holding data/real>)" >&2; exit 2; }
	$(MAKE) data/real/features/celeba6300_faceapi128_test.bin
	$(MAKE) pipeline DATA=data/real NAME=celeba6300_faceapi128_test TRAIN=celeba6300_faceapi128_train DIM=128 FEAT_OPTS=--center

data/real/features/celeba6300_faceapi128_test.bin: | $(INSTALLED)
	$(call RUNSTAGE,split) --prefix $(SHARED)/data/real --name celeba6300_faceapi128 --dim 128 --oprefix data/real
