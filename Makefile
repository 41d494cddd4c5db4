# dcp-operator: `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := help
KUBECTL := bin/kubectl
DEV_CLUSTER ?= dcp-dev
DEV_KUBECONFIG := .dev/kubeconfig
CLUSTER_BINARIES := bin/kwokctl bin/kwok bin/kube-apiserver bin/kube-controller-manager bin/kube-scheduler bin/etcd bin/etcdctl bin/kubectl

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
test-e2e: build cluster ## E2E tests only (own cluster, or E2E_KUBECONFIG)
	bash hack/test.sh e2e

.PHONY: bench
bench: build cluster ## Scale and throughput benchmarks on a local cluster
	bash hack/bench.sh

##@ Cluster
bin/.cluster-stamp: hack/cluster/go.mod hack/cluster/go.sum hack/cluster/build.sh
	bash hack/cluster/build.sh
	@touch $@

.PHONY: cluster
cluster: bin/.cluster-stamp ## Build the pinned etcd, Kubernetes and kwok binaries into bin/ (cached)

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
