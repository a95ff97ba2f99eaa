# The two commands of the README: `make run` (the main job, offline) and `make test`.
# Everything is built with CMake in build/ (release), build-asan/ (ASan+UBSan).
JOBS ?= $(shell nproc)
BUILD := build
ASAN := build-asan

.PHONY: all deps build build-asan run test test-fast bench format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTQ_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

run: build
	@scripts/tour $(BUILD)

# The whole suite twice: the release build, then the sanitizer build.
test: build build-asan
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE bench
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) -LE bench

test-fast: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE bench

bench: build
	cd $(BUILD) && ctest --output-on-failure -L bench -V

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN)
