# longshore: the two Quick start commands, and the build/bench helpers behind them.
#   make run    set up what is missing, build, and run the agent as a service against
#               libvirt's test driver, publishing to the local RabbitMQ and echoing
#               every sample it publishes on stdout (Ctrl-C stops it cleanly)
#   make test   every test (real plugins, libvirt test driver, RabbitMQ)

CARGO ?= cargo
# A libvirt test-driver node with Nova-like domains (the one Ceilometer 27 was
# captured on); any test:///ABSOLUTE/PATH.xml or a real qemu:///system works.
NODE ?= $(CURDIR)/tests/fixtures/capture/node.xml
LIBVIRT_URI ?= test://$(NODE)
TRANSPORT_URL ?= rabbit://guest:guest@127.0.0.1:5672/
PLUGINS := compute memory_util

.PHONY: setup build plugins run test bench clean-plugins

setup:
	bash .ci/setup

build:
	$(CARGO) build --release -p longshore -p longshore-plugin-compute -p longshore-plugin-memory-util
	$(MAKE) --no-print-directory plugins

# Drop the built libraries into plugins/, where the host looks for them.
plugins:
	@for p in $(PLUGINS); do install -m 0644 target/release/lib$$p.so plugins/lib$$p.so; done
	@echo "plugins/: $$(cd plugins && ls *.so | tr '\n' ' ')"

run: setup build
	RUST_LOG=$${RUST_LOG:-info} ./target/release/longshore run \
		--libvirt-uri "$(LIBVIRT_URI)" \
		--transport-url "$(TRANSPORT_URL)" \
		--set 'publisher.publishers=["notifier://", "stdout"]'

test: setup
	$(CARGO) test --workspace --no-fail-fast

bench: setup
	$(CARGO) bench -p longshore-extension --bench load
	$(CARGO) bench -p longshore-publisher --bench sign
	$(CARGO) bench -p longshore-notifier --bench throughput
	$(CARGO) bench -p longshore-polling
	$(CARGO) bench -p longshore-tests
	$(CARGO) bench -p longshore-tests --bench compute_cycle -- --remote

clean-plugins:
	rm -f plugins/*.so
