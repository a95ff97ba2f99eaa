# The two commands of the README: `make run` (the main job, offline) and `make test`.
# Everything is built with CMake in build/ (release), build-asan/ (ASan+UBSan).
JOBS ?= $(shell nproc)
BUILD := build
ASAN := build-asan
FUZZ := build-fuzz
FUZZ_HARNESSES := fuzz_pattern fuzz_ioc fuzz_stix_object fuzz_manifest fuzz_lua_json fuzz_csv_import fuzz_criteria fuzz_route fuzz_api_input fuzz_package

.PHONY: all deps build build-asan build-fuzz run test test-fast fuzz fuzz-ci bench format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DTQ_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN) -j $(JOBS)

# libFuzzer harnesses (tests/fuzz): clang with -fsanitize=fuzzer,address,undefined.
build-fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ) -DCMAKE_BUILD_TYPE=Debug -DTQ_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ) -j $(JOBS) --target $(FUZZ_HARNESSES)

# CI: each harness for 45 s with a fixed seed. `make fuzz`: 10 minutes each, a new seed.
fuzz-ci: build-fuzz
	FUZZ_SEED=1 scripts/fuzz $(FUZZ) 45

fuzz: build-fuzz
	scripts/fuzz $(FUZZ) 600

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
	rm -rf $(BUILD) $(ASAN) $(FUZZ)
