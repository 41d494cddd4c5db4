# dcp-operator: `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
# The Kubernetes minor for clusters, tests and the demo: the default (what CI builds, binaries in bin/) or
# another pinned one, e.g. K8S_VERSION=1.37 (hack/cluster/1.37/go.mod, binaries in bin/1.37/).
K8S_VERSION ?= $(shell hack/cluster/versions.sh default)
export K8S_VERSION
CLUSTER_BIN := $(shell hack/cluster/versions.sh bin $(K8S_VERSION))
ifeq ($(CLUSTER_BIN),)
$(error K8S_VERSION=$(K8S_VERSION) is not pinned; pinned: $(shell hack/cluster/versions.sh list))
endif
CLUSTER_MODULE := $(if $(filter bin,$(CLUSTER_BIN)),hack/cluster,hack/cluster/$(K8S_VERSION))
KUBECTL := $(CLUSTER_BIN)/kubectl
DEV_CLUSTER ?= dcp-dev
DEV_KUBECONFIG := .dev/kubeconfig

##@ General
.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^##@/ {printf "\n%s\n", substr($$0, 5)} /^[a-zA-Z0-9_-]+:.*?##/ {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: install-deps
install-deps: node_modules/.installed ## Install npm dependencies (npm ci)

.PHONY: build
build: node_modules/.installed ## Compile TypeScript to dist/
	npx tsc -p tsconfig.json

.PHONY: generate
generate: build ## Regenerate crds/ from src/api/policy.ts
	node dist/hack/generate-crd.js

.PHONY: chart
chart: build ## Regenerate the Helm chart deploy/chart/dcp-operator from deploy/ and crds/
	node dist/hack/generate-chart.js

.PHONY: lint
lint: node_modules/.installed ## Lint with typescript-eslint
	npx eslint .

.PHONY: test
test: ## Install, build, run unit and e2e tests on a fresh local cluster; ends with "N passed, N failed"
	bash hack/test.sh

.PHONY: test-unit
test-unit: build ## Unit tests only
	bash hack/test.sh unit

.PHONY: test-e2e
test-e2e: build cluster ## E2E tests only (own cluster, or E2E_KUBECONFIG); K8S_VERSION=1.37 for that minor
	bash hack/test.sh e2e

.PHONY: test-matrix
test-matrix: build ## The whole e2e suite on every pinned Kubernetes minor (builds what is missing): a line per minor
	bash hack/test-matrix.sh

.PHONY: faults
faults: build cluster ## Fault campaign: each scenario FAULT_ROUNDS times (20) under churn, invariants per round, one line of counts (FAULT_SEED= repeats one)
	bash hack/faults.sh

.PHONY: bench
bench: build cluster ## Scale and throughput benchmarks on a local cluster
	bash hack/bench.sh

.PHONY: bench-scale
bench-scale: build cluster ## 1k→100k Pods: dcp (protobuf, JSON), informer, floor [KSM_BIN]; writes docs/benchmarks.md + plot (SIZES=, CHURN_SECONDS=, RATE=)
	node dist/bench/scale.js

##@ Image
.PHONY: image
image: build bin/.oci-build-stamp ## Build the OCI image without Docker: .dev/image/oci (layout) and .dev/image/dcp-operator.tar (docker load)
	bash hack/image/build.sh

##@ Cluster
$(CLUSTER_BIN)/.cluster-stamp: $(CLUSTER_MODULE)/go.mod $(CLUSTER_MODULE)/go.sum hack/cluster/build.sh
	bash hack/cluster/build.sh $(K8S_VERSION)
	@touch $@

.PHONY: cluster
cluster: $(CLUSTER_BIN)/.cluster-stamp ## Build the pinned etcd, Kubernetes (K8S_VERSION) and kwok binaries into bin/ (cached)

# Pinned Go tools, one module each under hack/: helm, otelcol, image (oci-build on go-containerregistry), prometheus (promtool).
bin/.helm-stamp: hack/helm/go.mod hack/helm/go.sum hack/build-tool.sh
	bash hack/build-tool.sh helm
	@touch $@
bin/.otelcol-stamp: hack/otelcol/go.mod hack/otelcol/go.sum hack/otelcol/main.go hack/build-tool.sh
	bash hack/build-tool.sh otelcol
	@touch $@
bin/.oci-build-stamp: hack/image/go.mod hack/image/go.sum hack/image/main.go hack/build-tool.sh
	bash hack/build-tool.sh oci-build
	@touch $@
bin/.promtool-stamp: hack/prometheus/go.mod hack/prometheus/go.sum hack/build-tool.sh
	bash hack/build-tool.sh promtool
	@touch $@

.PHONY: tools
tools: bin/.helm-stamp bin/.oci-build-stamp bin/.otelcol-stamp bin/.promtool-stamp ## Build the pinned Go tools (helm, oci-build, otelcol, promtool) into bin/ (cached)

.PHONY: dev-cluster-up
dev-cluster-up: cluster ## Start a local cluster with the CRD installed; writes .dev/kubeconfig
	hack/cluster/cluster.sh up $(DEV_CLUSTER) $(CURDIR)/$(DEV_KUBECONFIG)
	$(KUBECTL) --kubeconfig $(DEV_KUBECONFIG) apply -f crds/
	$(KUBECTL) --kubeconfig $(DEV_KUBECONFIG) wait --for=condition=Established --timeout=60s crd/datacollectionpolicies.datacollection.arc.io
	@echo "cluster $(DEV_CLUSTER) is up: $(KUBECTL) --kubeconfig $(DEV_KUBECONFIG) get ns"

.PHONY: dev-cluster-down
dev-cluster-down: ## Delete the local cluster; leaves no process behind
	hack/cluster/cluster.sh down $(DEV_CLUSTER)
	rm -f $(DEV_KUBECONFIG)

##@ Deployment
.PHONY: install
install: ## Apply the CRD to the cluster of KUBECONFIG (default .dev/kubeconfig)
	$(KUBECTL) --kubeconfig $${KUBECONFIG:-$(DEV_KUBECONFIG)} apply -f crds/

.PHONY: run
run: build ## Run the operator against .dev/kubeconfig (or KUBECONFIG)
	node dist/src/cli/main.js run --kubeconfig $${KUBECONFIG:-$(DEV_KUBECONFIG)} --data-dir ./data

.PHONY: demo
demo: ## Start a cluster, a simulated fleet and the operator, and show what it collects
	bash hack/demo.sh

.PHONY: clean
clean: ## Remove build output (keeps bin/)
	rm -rf dist node_modules/.installed
