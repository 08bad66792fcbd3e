//! build.zig - builds Docket and its pinned dependencies from source.
//!
//! Steps:
//!   zig build                      static musl binary in zig-out/bin/docket (x86_64 by default;
//!                                  -Dtarget=aarch64-linux-musl cross-compiles)
//!   zig build run -- ARGS          build, then run docket with ARGS
//!   zig build test                 C unit tests + fuzz-corpus replay (ordinary build)
//!   zig build -Dsanitize=address,undefined test
//!                                  the same tests, and zig-out/bin/docket-sanitize, built with
//!                                  clang's ASan+UBSan (zig's musl target has no ASan runtime)
//!   zig build fuzz                 libFuzzer targets in zig-out/bin/fuzz-* (clang)
//!
//! Third-party sources are never committed: vendor/fetch unpacks the pinned archives into
//! vendor/src/, which this file compiles. Source lists are plain arrays; each dependency is a
//! static library with its own relaxed flags; our code gets the strict flags.
const std = @import("std");
const builtin = @import("builtin");

/// The one Zig version this build is written for (installed by .ci/do from PyPI's ziglang).
const zig_version_required = "0.15.2";
const docket_version = "0.1.0";

comptime {
    const required = std.SemanticVersion.parse(zig_version_required) catch unreachable;
    if (builtin.zig_version.order(required) != .eq) {
        @compileError("Docket's build.zig needs Zig " ++ zig_version_required ++ ", but this is Zig " ++
            builtin.zig_version_string ++ ". Run `.ci/do build` (it installs the pinned Zig) or " ++
            "install ziglang==" ++ zig_version_required ++ " from PyPI.");
    }
}

// ---- Source lists -------------------------------------------------------------------------

/// Docket's own modules are every .c file under src/ except main.c (linked only into the binary)
/// and web/embed.c, tasks/tzdata_embed.c (build-time host tools): a file added to src/ cannot be
/// forgotten here.
fn docketSources(b: *std.Build) []const []const u8 {
    return listCFilesRecursive(b, "src", &.{ "main.c", "web/embed.c", "tasks/tzdata_embed.c" }, "");
}

/// Strict flags for our code (STYLE.md).
const docket_flags = [_][]const u8{
    "-std=c17",
    "-Wall",
    "-Wextra",
    "-Wstrict-prototypes",
    "-Wshadow",
    "-Wvla",
    "-Werror",
    "-D_GNU_SOURCE",
    "-fno-omit-frame-pointer",
};

/// C unit tests: tests/unit/main.c plus every *_test.c below tests/unit/ (mirroring src/).
fn unitTestSources(b: *std.Build) []const []const u8 {
    return listCFilesRecursive(b, "tests/unit", &.{}, "");
}

/// libFuzzer targets: tests/fuzz/<name>_fuzz.c, each with a corpus in tests/fuzz/corpus/<name>/.
fn fuzzTargets(b: *std.Build) []const []const u8 {
    const files = listCFilesRecursive(b, "tests/fuzz", &.{"replay.c"}, "_fuzz.c");
    var names: std.ArrayList([]const u8) = .empty;
    for (files) |file| {
        if (std.mem.indexOfScalar(u8, file, '/') != null) continue;
        names.append(b.allocator, file[0 .. file.len - "_fuzz.c".len]) catch @panic("out of memory");
    }
    return names.items;
}

const libuv_sources = [_][]const u8{
    "src/fs-poll.c",           "src/idna.c",                "src/inet.c",
    "src/random.c",            "src/strscpy.c",             "src/strtok.c",
    "src/thread-common.c",     "src/threadpool.c",          "src/timer.c",
    "src/uv-common.c",         "src/uv-data-getter-setters.c", "src/version.c",
    "src/unix/async.c",        "src/unix/core.c",           "src/unix/dl.c",
    "src/unix/fs.c",           "src/unix/getaddrinfo.c",    "src/unix/getnameinfo.c",
    "src/unix/loop-watcher.c", "src/unix/loop.c",           "src/unix/pipe.c",
    "src/unix/poll.c",         "src/unix/process.c",        "src/unix/random-devurandom.c",
    "src/unix/signal.c",       "src/unix/stream.c",         "src/unix/tcp.c",
    "src/unix/thread.c",       "src/unix/tty.c",            "src/unix/udp.c",
    "src/unix/proctitle.c",    "src/unix/linux.c",          "src/unix/procfs-exepath.c",
    "src/unix/random-getrandom.c", "src/unix/random-sysctl-linux.c",
};
const libuv_flags = [_][]const u8{
    "-std=gnu11",             "-w",                    "-D_GNU_SOURCE",
    "-D_POSIX_C_SOURCE=200112", "-D_FILE_OFFSET_BITS=64", "-D_LARGEFILE_SOURCE",
};

const llhttp_sources = [_][]const u8{ "src/api.c", "src/http.c", "src/llhttp.c" };
const yyjson_sources = [_][]const u8{"src/yyjson.c"};
const wslay_sources = [_][]const u8{
    "lib/wslay_event.c", "lib/wslay_frame.c", "lib/wslay_net.c", "lib/wslay_queue.c",
};
const wslay_flags = [_][]const u8{ "-std=gnu11", "-w", "-DHAVE_ARPA_INET_H=1", "-DHAVE_NETINET_IN_H=1" };
const sqlite_sources = [_][]const u8{"sqlite3.c"};
/// SQLite compile options: FTS5 for search; JSON is built in since 3.38; no extension loading
/// in a static binary; double-quoted string literals off (a common source of silent bugs).
const sqlite_flags = [_][]const u8{
    "-std=gnu11",                  "-w",
    "-DSQLITE_ENABLE_FTS5",        "-DSQLITE_THREADSAFE=1",
    "-DSQLITE_DQS=0",              "-DSQLITE_OMIT_LOAD_EXTENSION",
    "-DSQLITE_DEFAULT_FOREIGN_KEYS=1", "-DSQLITE_USE_ALLOCA",
    "-DSQLITE_OMIT_DEPRECATED",    "-DSQLITE_ENABLE_MATH_FUNCTIONS",
};
const relaxed_flags = [_][]const u8{ "-std=gnu11", "-w" };

// ---- Build ----------------------------------------------------------------------------------

const Dependency = struct {
    name: []const u8,
    root: []const u8, // under vendor/src
    sources: []const []const u8,
    flags: []const []const u8,
    includes: []const []const u8, // include dirs under root, exported to dependants
    /// Instrument with sanitizers in the clang sanitizer build (the two large ones are left
    /// plain to keep that build fast; their heap use is still checked by ASan's allocator).
    sanitize: bool,
};

fn dependencies(b: *std.Build) []const Dependency {
    const mbedtls_sources = listCFiles(b, "vendor/src/mbedtls", "library");
    const list = [_]Dependency{
        .{ .name = "uv", .root = "libuv", .sources = &libuv_sources, .flags = &libuv_flags, .includes = &.{ "include", "src" }, .sanitize = true },
        .{ .name = "llhttp", .root = "llhttp", .sources = &llhttp_sources, .flags = &relaxed_flags, .includes = &.{"include"}, .sanitize = true },
        .{ .name = "yyjson", .root = "yyjson", .sources = &yyjson_sources, .flags = &relaxed_flags, .includes = &.{"src"}, .sanitize = true },
        .{ .name = "wslay", .root = "wslay", .sources = &wslay_sources, .flags = &wslay_flags, .includes = &.{ "lib/includes", "lib" }, .sanitize = true },
        .{ .name = "sqlite3", .root = "sqlite3", .sources = &sqlite_sources, .flags = &sqlite_flags, .includes = &.{"."}, .sanitize = false },
        .{ .name = "mbedtls", .root = "mbedtls", .sources = mbedtls_sources, .flags = &relaxed_flags, .includes = &.{ "include", "library" }, .sanitize = false },
    };
    return b.allocator.dupe(Dependency, &list) catch @panic("out of memory");
}

/// Lists the *.c files of root/sub, sorted, as paths relative to root.
fn listCFiles(b: *std.Build, root: []const u8, sub: []const u8) []const []const u8 {
    const path = b.pathJoin(&.{ root, sub });
    var dir = b.build_root.handle.openDir(path, .{ .iterate = true }) catch {
        std.debug.print("error: {s} is missing. Run vendor/fetch first (or `.ci/do build`).\n", .{path});
        std.process.exit(1);
    };
    defer dir.close();
    var files: std.ArrayList([]const u8) = .empty;
    var iterator = dir.iterate();
    while (iterator.next() catch @panic("cannot list directory")) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ".c")) continue;
        files.append(b.allocator, b.pathJoin(&.{ sub, entry.name })) catch @panic("out of memory");
    }
    std.mem.sort([]const u8, files.items, {}, lessThan);
    return files.items;
}

/// Lists *.c files below root (recursively), relative to root, sorted, skipping `exclude` and,
/// when `suffix` is not empty, files not ending in it.
fn listCFilesRecursive(b: *std.Build, root: []const u8, exclude: []const []const u8, suffix: []const u8) []const []const u8 {
    var dir = b.build_root.handle.openDir(root, .{ .iterate = true }) catch @panic("source directory missing");
    defer dir.close();
    var walker = dir.walk(b.allocator) catch @panic("out of memory");
    defer walker.deinit();
    var files: std.ArrayList([]const u8) = .empty;
    outer: while (walker.next() catch @panic("cannot walk sources")) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.basename, ".c")) continue;
        if (suffix.len > 0 and !std.mem.endsWith(u8, entry.basename, suffix)) continue;
        for (exclude) |skip| if (std.mem.eql(u8, skip, entry.path)) continue :outer;
        files.append(b.allocator, b.dupe(entry.path)) catch @panic("out of memory");
    }
    std.mem.sort([]const u8, files.items, {}, lessThan);
    return files.items;
}

fn lessThan(_: void, a: []const u8, b: []const u8) bool {
    return std.mem.lessThan(u8, a, b);
}

fn checkVendor(b: *std.Build) void {
    const required = [_][]const u8{
        "vendor/src/libuv/include/uv.h",  "vendor/src/llhttp/include/llhttp.h",
        "vendor/src/sqlite3/sqlite3.c",   "vendor/src/wslay/lib/includes/wslay/wslayver.h",
        "vendor/src/mbedtls/include/mbedtls/ssl.h", "vendor/src/yyjson/src/yyjson.h",
        "vendor/src/tzdata/tzdata.zi",
    };
    for (required) |path| {
        b.build_root.handle.access(path, .{}) catch {
            std.debug.print("error: {s} is missing. Run vendor/fetch first (or `.ci/do build`).\n", .{path});
            std.process.exit(1);
        };
    }
}

fn addDependencyIncludes(b: *std.Build, module: *std.Build.Module, deps: []const Dependency) void {
    for (deps) |dep| {
        for (dep.includes) |include| {
            module.addIncludePath(b.path(b.pathJoin(&.{ "vendor/src", dep.root, include })));
        }
    }
}

fn staticLibrary(b: *std.Build, dep: Dependency, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode) *std.Build.Step.Compile {
    const module = b.createModule(.{
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .sanitize_c = .off,
    });
    module.addCSourceFiles(.{
        .root = b.path(b.pathJoin(&.{ "vendor/src", dep.root })),
        .files = dep.sources,
        .flags = dep.flags,
    });
    for (dep.includes) |include| {
        module.addIncludePath(b.path(b.pathJoin(&.{ "vendor/src", dep.root, include })));
    }
    return b.addLibrary(.{ .name = dep.name, .linkage = .static, .root_module = module });
}

/// Generates the C table of embedded web assets from every file under web/.
fn webAssets(b: *std.Build) std.Build.LazyPath {
    const embed = b.addExecutable(.{
        .name = "embed",
        .root_module = b.createModule(.{ .target = b.graph.host, .optimize = .Debug, .link_libc = true }),
    });
    embed.root_module.addCSourceFile(.{ .file = b.path("src/web/embed.c"), .flags = &docket_flags });
    const run = b.addRunArtifact(embed);
    const output = run.addOutputFileArg("assets_data.c");
    var dir = b.build_root.handle.openDir("web", .{ .iterate = true }) catch @panic("web/ is missing");
    defer dir.close();
    var walker = dir.walk(b.allocator) catch @panic("out of memory");
    defer walker.deinit();
    var paths: std.ArrayList([]const u8) = .empty;
    while (walker.next() catch @panic("cannot walk web/")) |entry| {
        if (entry.kind != .file) continue;
        paths.append(b.allocator, b.dupe(entry.path)) catch @panic("out of memory");
    }
    std.mem.sort([]const u8, paths.items, {}, lessThan);
    for (paths.items) |path| {
        run.addPrefixedFileArg(b.fmt("/{s}=", .{path}), b.path(b.pathJoin(&.{ "web", path })));
    }
    return output;
}

/// Generates the C table of embedded IANA zone files (the time-zone fallback, src/tasks/tzdata.c)
/// from every file under vendor/src/tzdata/; the tool skips those that are not TZif. One run step,
/// shared by every module that links Docket's sources.
var tzdata_table: ?std.Build.LazyPath = null;
fn tzdataTable(b: *std.Build) std.Build.LazyPath {
    if (tzdata_table) |table| return table;
    const tool = b.addExecutable(.{
        .name = "tzdata_embed",
        .root_module = b.createModule(.{ .target = b.graph.host, .optimize = .Debug, .link_libc = true }),
    });
    tool.root_module.addCSourceFile(.{ .file = b.path("src/tasks/tzdata_embed.c"), .flags = &docket_flags });
    const run = b.addRunArtifact(tool);
    const output = run.addOutputFileArg("tzdata_data.c");
    run.addFileArg(b.path("vendor/src/tzdata/tzdata.zi"));
    var dir = b.build_root.handle.openDir("vendor/src/tzdata", .{ .iterate = true }) catch @panic("vendor/src/tzdata is missing");
    defer dir.close();
    var walker = dir.walk(b.allocator) catch @panic("out of memory");
    defer walker.deinit();
    while (walker.next() catch @panic("cannot walk vendor/src/tzdata")) |entry| {
        if (entry.kind != .file or std.mem.startsWith(u8, entry.basename, ".")) continue;
        run.addPrefixedFileArg(b.fmt("{s}=", .{entry.path}), b.path(b.pathJoin(&.{ "vendor/src/tzdata", entry.path })));
    }
    tzdata_table = output;
    return output;
}

fn versionString(b: *std.Build) []const u8 {
    var code: u8 = 0;
    const commit = b.runAllowFail(&.{ "git", "-C", b.build_root.path orelse ".", "rev-parse", "--short=10", "HEAD" }, &code, .Ignore) catch
        return docket_version;
    return b.fmt("{s}+{s}", .{ docket_version, std.mem.trim(u8, commit, " \n") });
}

/// A module with Docket's own sources (not main.c) and every dependency linked in.
fn docketModule(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode, libs: []const *std.Build.Step.Compile, deps: []const Dependency, assets: std.Build.LazyPath, version: []const u8, strip: bool) *std.Build.Module {
    const tzdata = tzdataTable(b);
    const module = b.createModule(.{
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .strip = strip,
        .sanitize_c = .off,
    });
    module.addCMacro("DOCKET_VERSION", b.fmt("\"{s}\"", .{version}));
    module.addCSourceFiles(.{ .root = b.path("src"), .files = docketSources(b), .flags = &docket_flags });
    module.addCSourceFile(.{ .file = assets, .flags = &relaxed_flags });
    module.addCSourceFile(.{ .file = tzdata, .flags = &relaxed_flags });
    module.addIncludePath(b.path("src/web"));
    // Debug builds run the expensive invariant checks (the timer wheel's validate hook).
    if (optimize == .Debug) module.addCMacro("DOCKET_DEBUG", "1");
    addDependencyIncludes(b, module, deps);
    for (libs) |lib| module.linkLibrary(lib);
    return module;
}

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{
        .default_target = .{ .cpu_arch = .x86_64, .os_tag = .linux, .abi = .musl },
    });
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimisation mode (default ReleaseFast)") orelse .ReleaseFast;
    const sanitize = b.option([]const u8, "sanitize", "Also build with clang sanitizers, e.g. address,undefined");
    const strip = b.option(bool, "strip", "Strip the docket binary (default: true unless Debug)") orelse (optimize != .Debug);
    const clang = b.option([]const u8, "clang", "clang used for the sanitizer and fuzz builds (default clang-14)") orelse "clang-14";

    checkVendor(b);
    const deps = dependencies(b);
    const version = versionString(b);
    const assets = webAssets(b);

    var libs: std.ArrayList(*std.Build.Step.Compile) = .empty;
    for (deps) |dep| libs.append(b.allocator, staticLibrary(b, dep, target, optimize)) catch @panic("out of memory");

    // The product binary.
    const exe_module = docketModule(b, target, optimize, libs.items, deps, assets, version, strip);
    exe_module.addCSourceFile(.{ .file = b.path("src/main.c"), .flags = &docket_flags });
    const exe = b.addExecutable(.{ .name = "docket", .root_module = exe_module, .linkage = .static });
    exe.link_gc_sections = true;
    b.installArtifact(exe);

    const run = b.addRunArtifact(exe);
    run.step.dependOn(b.getInstallStep());
    if (b.args) |args| run.addArgs(args);
    b.step("run", "Build and run docket (arguments after --)").dependOn(&run.step);

    // Unit tests and fuzz-corpus replay, in the ordinary build.
    const test_step = b.step("test", "Run the C unit tests and replay the fuzz corpora");
    const unit_module = docketModule(b, target, .Debug, libs.items, deps, assets, version, false);
    unit_module.addCSourceFiles(.{ .root = b.path("tests/unit"), .files = unitTestSources(b), .flags = &docket_flags });
    unit_module.addIncludePath(b.path("tests/unit"));
    const unit = b.addExecutable(.{ .name = "docket-unit", .root_module = unit_module, .linkage = .static });
    b.installArtifact(unit);
    const run_unit = b.addRunArtifact(unit);
    run_unit.has_side_effects = true;
    test_step.dependOn(&run_unit.step);

    for (fuzzTargets(b)) |name| {
        const replay_module = docketModule(b, target, .Debug, libs.items, deps, assets, version, false);
        replay_module.addCSourceFiles(.{ .root = b.path("tests/fuzz"), .files = &.{ b.fmt("{s}_fuzz.c", .{name}), "replay.c" }, .flags = &docket_flags });
        const replay = b.addExecutable(.{ .name = b.fmt("replay-{s}", .{name}), .root_module = replay_module, .linkage = .static });
        b.installArtifact(replay);
        const run_replay = b.addRunArtifact(replay);
        run_replay.has_side_effects = true;
        run_replay.addDirectoryArg(b.path(b.fmt("tests/fuzz/corpus/{s}", .{name})));
        test_step.dependOn(&run_replay.step);
    }

    // Sanitizer and fuzz builds with clang (glibc host target).
    const clang_build = ClangBuild{ .b = b, .clang = clang, .deps = deps, .assets = assets, .version = version };
    if (sanitize) |kinds| {
        const sanitize_flag = b.fmt("-fsanitize={s}", .{kinds});
        const server = clang_build.link("docket-sanitize", &.{ sanitize_flag, "-fno-sanitize-recover=all" }, &.{b.path("src/main.c")}, "src");
        b.getInstallStep().dependOn(&b.addInstallBinFile(server, "docket-sanitize").step);
        var unit_files: std.ArrayList(std.Build.LazyPath) = .empty;
        for (unitTestSources(b)) |file| unit_files.append(b.allocator, b.path(b.pathJoin(&.{ "tests/unit", file }))) catch @panic("out of memory");
        const unit_sanitized = clang_build.link("docket-unit-sanitize", &.{ sanitize_flag, "-fno-sanitize-recover=all" }, unit_files.items, "tests/unit");
        b.getInstallStep().dependOn(&b.addInstallBinFile(unit_sanitized, "docket-unit-sanitize").step);
        const run_sanitized = std.Build.Step.Run.create(b, "run docket-unit-sanitize");
        run_sanitized.addFileArg(unit_sanitized);
        run_sanitized.has_side_effects = true;
        run_sanitized.setEnvironmentVariable("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1");
        run_sanitized.setEnvironmentVariable("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
        test_step.dependOn(&run_sanitized.step);
    }
    const fuzz_step = b.step("fuzz", "Build the libFuzzer targets (zig-out/bin/fuzz-*) with clang");
    for (fuzzTargets(b)) |name| {
        const binary = clang_build.link(b.fmt("fuzz-{s}", .{name}), &.{"-fsanitize=fuzzer,address,undefined"}, &.{b.path(b.fmt("tests/fuzz/{s}_fuzz.c", .{name}))}, "tests/fuzz");
        fuzz_step.dependOn(&b.addInstallBinFile(binary, b.fmt("fuzz-{s}", .{name})).step);
    }
}

/// Compiles every source with an external clang, one cached Run step per file (so zig runs
/// them in parallel and recompiles only what changed), then links.
const ClangBuild = struct {
    b: *std.Build,
    clang: []const u8,
    deps: []const Dependency,
    assets: std.Build.LazyPath,
    version: []const u8,

    fn object(self: ClangBuild, source: std.Build.LazyPath, flags: []const []const u8, extra_includes: []const []const u8) std.Build.LazyPath {
        const b = self.b;
        const run = b.addSystemCommand(&.{ self.clang, "-c", "-g", "-O1", "-fno-omit-frame-pointer" });
        run.addArgs(flags);
        for (self.deps) |dep| {
            for (dep.includes) |include| run.addPrefixedDirectoryArg("-I", b.path(b.pathJoin(&.{ "vendor/src", dep.root, include })));
        }
        for (extra_includes) |include| run.addPrefixedDirectoryArg("-I", b.path(include));
        run.addFileArg(source);
        // The dependency file lists every header read, so the cached object is rebuilt
        // when any of them changes (a Run step otherwise hashes only its arguments).
        run.addArg("-MD");
        _ = run.addPrefixedDepFileOutputArg("-MF", "out.d");
        run.addArg("-o");
        return run.addOutputFileArg("out.o");
    }

    fn link(self: ClangBuild, name: []const u8, sanitize_flags: []const []const u8, extra_sources: []const std.Build.LazyPath, extra_include: []const u8) std.Build.LazyPath {
        const b = self.b;
        const is_fuzz = std.mem.startsWith(u8, name, "fuzz-");
        // Fuzz objects are instrumented for coverage but get libFuzzer's main only at link time.
        var compile_sanitize: std.ArrayList([]const u8) = .empty;
        for (sanitize_flags) |flag| {
            const adjusted = if (is_fuzz) b.fmt("{s}", .{std.mem.replaceOwned(u8, b.allocator, flag, "fuzzer,", "fuzzer-no-link,") catch @panic("oom")}) else flag;
            compile_sanitize.append(b.allocator, adjusted) catch @panic("out of memory");
        }
        var objects: std.ArrayList(std.Build.LazyPath) = .empty;
        const add = struct {
            fn call(list: *std.ArrayList(std.Build.LazyPath), builder: *std.Build, path: std.Build.LazyPath) void {
                list.append(builder.allocator, path) catch @panic("out of memory");
            }
        }.call;
        for (self.deps) |dep| {
            for (dep.sources) |file| {
                var flags: std.ArrayList([]const u8) = .empty;
                flags.appendSlice(b.allocator, dep.flags) catch @panic("oom");
                if (dep.sanitize) flags.appendSlice(b.allocator, compile_sanitize.items) catch @panic("oom");
                add(&objects, b, self.object(b.path(b.pathJoin(&.{ "vendor/src", dep.root, file })), flags.items, &.{}));
            }
        }
        var own_flags: std.ArrayList([]const u8) = .empty;
        own_flags.appendSlice(b.allocator, &docket_flags) catch @panic("oom");
        own_flags.appendSlice(b.allocator, compile_sanitize.items) catch @panic("oom");
        own_flags.append(b.allocator, b.fmt("-DDOCKET_VERSION=\"{s}\"", .{self.version})) catch @panic("oom");
        for (docketSources(b)) |file| add(&objects, b, self.object(b.path(b.pathJoin(&.{ "src", file })), own_flags.items, &.{"src/web"}));
        add(&objects, b, self.object(self.assets, &.{ "-std=c17", "-w" }, &.{"src/web"}));
        add(&objects, b, self.object(tzdataTable(b), &.{ "-std=c17", "-w" }, &.{}));
        for (extra_sources) |source| add(&objects, b, self.object(source, own_flags.items, &.{ "src/web", extra_include }));
        const run = b.addSystemCommand(&.{ self.clang, "-g" });
        run.addArgs(sanitize_flags);
        for (objects.items) |obj| run.addFileArg(obj);
        run.addArgs(&.{ "-lpthread", "-ldl", "-lm", "-o" });
        return run.addOutputFileArg(name);
    }
};
