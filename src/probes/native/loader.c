// fay-bpf-loader: loads eBPF programs that Fay generated (bytecode, no ELF, no compiler), attaches
// them, and reads their maps when asked. Fay runs one per query, as it runs bpftrace: everything it
// loads is held by its file descriptors only (nothing pinned), so when it exits, by any path, the
// kernel detaches the programs and frees the maps. PR_SET_PDEATHSIG kills it when Fay dies.
//
// Built at set-up against Debian's libbpf-dev (its low-level bpf.h calls: map create, program
// load, raw tracepoint open, map lookups); see docs/native-backend.md.
//
// Protocol: lines on stdin, lines on stdout. The set-up, then `go`:
//   map <type> <key_size> <value_size> <max_entries> <name> [flags]
//   prog <prog_type> <hex instructions>        (a map's fd or value: ld_imm64 with src 1 or 2, imm its map index)
//   attach raw <prog index> <tracepoint>         (raw tracepoint, e.g. sys_enter)
//   go
// answered `ready <maps> <progs> <attached>` or `error <what> <text>` (then it exits 2). Then:
//   read <map>              `entries <n>`, n lines `<key hex> <value hex>`, `end`
//                           (a per-CPU map's value: each CPU's, 8-byte aligned, one after another)
//   drain <map>             the same, then empties it (a hash's keys deleted, an array's values zeroed)
//   set <map> <key> <value> update one element (hex)
//   quit, or end of input   detach, free, exit 0
// Text in an error has its newlines as \n.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_MAPS 64
// A query over every tracepoint of a kernel has a program and an attachment for each (~2,300 here).
#define MAX_PROGS 8192
#define MAX_LINKS 8192
#define LOG_SIZE (1 << 20)

static int map_fds[MAX_MAPS], map_types[MAX_MAPS], key_sizes[MAX_MAPS], value_sizes[MAX_MAPS];
static int prog_fds[MAX_PROGS];
static __u32 prog_ids[MAX_PROGS], map_ids[MAX_MAPS];
static int link_fds[MAX_LINKS];
static int maps, progs, links;
static int cpus;
static char log_buf[LOG_SIZE];

static void escaped(const char *text) {
  for (const char *c = text; *c; c++) {
    if (*c == '\n') fputs("\\n", stdout);
    else if (*c == '\\') fputs("\\\\", stdout);
    else putchar(*c);
  }
}

static void fail(const char *what, const char *text) {
  printf("error %s ", what);
  escaped(text);
  putchar('\n');
  fflush(stdout);
  exit(2);
}

static void fail_errno(const char *what, const char *detail) {
  char text[512];
  snprintf(text, sizeof text, "%s: %s (errno %d)", detail, strerror(errno), errno);
  fail(what, text);
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads hex into out (at most max bytes); returns the bytes read, or -1.
static long unhex(const char *hex, unsigned char *out, long max) {
  long n = 0;
  while (hex[0] && hex[0] != '\n' && hex[0] != ' ') {
    int hi = hex_value(hex[0]), lo = hex[1] ? hex_value(hex[1]) : -1;
    if (hi < 0 || lo < 0 || n >= max) return -1;
    out[n++] = (unsigned char)(hi << 4 | lo);
    hex += 2;
  }
  return n;
}

static void put_hex(const unsigned char *bytes, long n) {
  static const char digits[] = "0123456789abcdef";
  for (long i = 0; i < n; i++) {
    putchar(digits[bytes[i] >> 4]);
    putchar(digits[bytes[i] & 15]);
  }
}

static int per_cpu(int type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static long value_bytes(int m) {
  return per_cpu(map_types[m]) ? (long)cpus * ((value_sizes[m] + 7) & ~7) : value_sizes[m];
}

/**
 * The next command line from stdin; meanwhile, the events the ring buffer gets are printed as they
 * come (both watched with poll). NULL at the end of input.
 */
static char *next_line(struct ring_buffer *events) {
  static char buffer[1 << 22];
  static size_t start, end;
  for (;;) {
    char *newline = memchr(buffer + start, '\n', end - start);
    if (newline) {
      *newline = 0;
      char *line = buffer + start;
      start = newline + 1 - buffer;
      return line;
    }
    if (start > 0) {
      memmove(buffer, buffer + start, end - start);
      end -= start;
      start = 0;
    }
    if (end == sizeof buffer - 1) fail("usage", "a line longer than 4 MB");
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = events ? ring_buffer__epoll_fd(events) : -1, .events = POLLIN}};
    if (poll(fds, events ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      fail_errno("poll", "stdin");
    }
    if (events && (fds[1].revents & POLLIN)) {
      ring_buffer__consume(events);
      fflush(stdout);
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(0, buffer + end, sizeof buffer - 1 - end);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (end == start) return NULL;
        // A last line without its newline.
        buffer[end] = 0;
        char *line = buffer + start;
        start = end;
        return line;
      }
      end += n;
    }
  }
}

/** The ring buffer events are shipped through, if a map is one. */
static struct ring_buffer *ring;

/** An event from the ring buffer, as a line: `event <hex>`. */
static int print_event(void *context, void *data, size_t size) {
  (void)context;
  fputs("event ", stdout);
  put_hex((const unsigned char *)data, (long)size);
  putchar('\n');
  return 0;
}

/** Every event in the ring buffer now, printed (before an answer, so that a period's events come before its counts). */
static void consume_events(void) {
  if (!ring) return;
  if (ring_buffer__consume(ring) < 0) fail_errno("events", "ring buffer");
  fflush(stdout);
}

static void add_map(char *args) {
  int type, key_size, value_size, max_entries;
  unsigned flags = 0;
  char name[BPF_OBJ_NAME_LEN] = "";
  if (sscanf(args, "%d %d %d %d %15s %u", &type, &key_size, &value_size, &max_entries, name, &flags) < 4) fail("usage", "map <type> <key_size> <value_size> <max_entries> <name> [flags]");
  if (maps == MAX_MAPS) fail("usage", "too many maps");
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
  if (fd < 0) fail_errno("map", name);
  struct bpf_map_info info = {0};
  __u32 length = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) map_ids[maps] = info.id;
  map_fds[maps] = fd;
  map_types[maps] = type;
  key_sizes[maps] = key_size;
  value_sizes[maps] = value_size;
  maps++;
}

static void add_prog(char *args) {
  int type, used;
  if (sscanf(args, "%d %n", &type, &used) < 1) fail("usage", "prog <type> <hex>");
  if (progs == MAX_PROGS) fail("usage", "too many programs");
  const char *hex = args + used;
  long max = (long)strlen(hex) / 2 + 1;
  struct bpf_insn *insns = malloc(max);
  long bytes = unhex(hex, (unsigned char *)insns, max);
  if (bytes <= 0 || bytes % sizeof(struct bpf_insn)) fail("usage", "instructions are 8 bytes each, in hex");
  long count = bytes / sizeof(struct bpf_insn);
  // A map's fd where the program names its index.
  for (long i = 0; i < count; i++) {
    if (insns[i].code == (BPF_LD | BPF_DW | BPF_IMM) && (insns[i].src_reg == BPF_PSEUDO_MAP_FD || insns[i].src_reg == BPF_PSEUDO_MAP_VALUE)) {
      if (insns[i].imm < 0 || insns[i].imm >= maps) fail("usage", "a program names a map that is not there");
      insns[i].imm = map_fds[insns[i].imm];
    }
  }
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log_buf, .log_size = LOG_SIZE, .log_level = 1);
  log_buf[0] = 0;
  int fd = bpf_prog_load(type, "fay", "GPL", insns, count, &opts);
  if (fd < 0) {
    // The verifier's whole log goes with the error: a refusal is a bug in Fay's code generator.
    char text[LOG_SIZE + 128];
    snprintf(text, sizeof text, "%s (errno %d)\n%s", strerror(errno), errno, log_buf);
    fail("verifier", text);
  }
  free(insns);
  struct bpf_prog_info info = {0};
  __u32 length = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &length) == 0) prog_ids[progs] = info.id;
  prog_fds[progs++] = fd;
}

/**
 * A perf event for every process (on the first CPU: a program set on it runs wherever its event
 * fires), enabled, with the program set on it; -1 and errno when the kernel refuses. Closing it
 * detaches the program.
 */
static int perf_event_with(struct perf_event_attr *attr, int prog_fd) {
  int fd = syscall(__NR_perf_event_open, attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return -1;
  if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd) < 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) < 0) {
    int error = errno;
    close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

/** A tracepoint's id, from tracefs (`category:event`), or -1. */
static long tracepoint_id(const char *name) {
  static const char *roots[] = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};
  char category[128], event[128], path[512];
  if (sscanf(name, "%127[^:]:%127s", category, event) != 2) return -1;
  for (int r = 0; r < 2; r++) {
    snprintf(path, sizeof path, "%s/events/%s/%s/id", roots[r], category, event);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    long id = -1;
    if (fscanf(f, "%ld", &id) != 1) id = -1;
    fclose(f);
    return id;
  }
  return -1;
}

/** A program on a tracepoint's record: a perf event on the tracepoint. */
static int attach_tracepoint(const char *name, int prog_fd) {
  long id = tracepoint_id(name);
  if (id < 0) {
    errno = ENOENT;
    return -1;
  }
  struct perf_event_attr attr = {0};
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof attr;
  attr.config = id;
  attr.sample_period = 1;
  attr.wakeup_events = 1;
  return perf_event_with(&attr, prog_fd);
}

/**
 * A function's offset in its ELF file, as a uprobe needs it: its symbol's value (from .symtab, or
 * .dynsym in a stripped binary) less its section's address, plus the section's file offset.
 * -1 when the binary has no such function.
 */
static long function_offset(const char *path, const char *function) {
  if (elf_version(EV_CURRENT) == EV_NONE) return -1;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
  long found = -1;
  for (int pass = 0; elf && pass < 2 && found < 0; pass++) {
    Elf_Scn *section = NULL;
    while (found < 0 && (section = elf_nextscn(elf, section))) {
      GElf_Shdr header;
      if (!gelf_getshdr(section, &header) || header.sh_type != (pass == 0 ? SHT_SYMTAB : SHT_DYNSYM)) continue;
      Elf_Data *data = elf_getdata(section, NULL);
      size_t count = header.sh_entsize ? header.sh_size / header.sh_entsize : 0;
      for (size_t i = 0; data && i < count && found < 0; i++) {
        GElf_Sym symbol;
        if (!gelf_getsym(data, (int)i, &symbol) || GELF_ST_TYPE(symbol.st_info) != STT_FUNC || symbol.st_value == 0) continue;
        const char *name = elf_strptr(elf, header.sh_link, symbol.st_name);
        if (!name || strcmp(name, function)) continue;
        GElf_Shdr home;
        Elf_Scn *text = elf_getscn(elf, symbol.st_shndx);
        if (text && gelf_getshdr(text, &home)) found = (long)(symbol.st_value - home.sh_addr + home.sh_offset);
      }
    }
  }
  if (elf) elf_end(elf);
  close(fd);
  return found;
}

/** The uprobe PMU's type, and the bit of its config that makes a uprobe a return probe. */
static int uprobe_pmu(int *retprobe_bit) {
  int type = -1;
  FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
  if (f) {
    if (fscanf(f, "%d", &type) != 1) type = -1;
    fclose(f);
  }
  *retprobe_bit = 0;
  f = fopen("/sys/bus/event_source/devices/uprobe/format/retprobe", "r");
  if (f) {
    if (fscanf(f, "config:%d", retprobe_bit) != 1) *retprobe_bit = 0;
    fclose(f);
  }
  return type;
}

/** A program on a function's entry (or return) in a binary, for every process: a uprobe perf event with the program set on it. */
static int attach_uprobe(const char *path, const char *function, int ret, int prog_fd) {
  long offset = function_offset(path, function);
  if (offset < 0) {
    errno = ENOENT;
    return -1;
  }
  int bit;
  int type = uprobe_pmu(&bit);
  if (type < 0) {
    errno = EOPNOTSUPP;
    return -1;
  }
  struct perf_event_attr attr = {0};
  attr.type = type;
  attr.size = sizeof attr;
  attr.config = ret ? 1ULL << bit : 0;
  attr.config1 = (__u64)(unsigned long)path;
  attr.config2 = (__u64)offset;
  return perf_event_with(&attr, prog_fd);
}

/** raw|tp <prog> <tracepoint>, or up <prog> <0|1 return> <function> <path, to the end of the line: it may hold spaces>. */
static void attach(char *args) {
  char kind[16], name[256];
  int prog, ret, used = 0;
  if (links == MAX_LINKS) fail("usage", "too many attachments");
  if (sscanf(args, "%15s %d", kind, &prog) < 2 || prog < 0 || prog >= progs) fail("usage", "attach raw|tp|up <prog> …");
  int fd;
  if (!strcmp(kind, "up")) {
    if (sscanf(args, "%*s %*d %d %255s %n", &ret, name, &used) < 2 || !used) fail("usage", "attach up <prog> <0|1> <function> <path>");
    fd = attach_uprobe(args + used, name, ret, prog_fds[prog]);
  } else {
    if (sscanf(args, "%*s %*d %255s", name) < 1 || (strcmp(kind, "raw") && strcmp(kind, "tp"))) fail("usage", "attach raw|tp <prog> <tracepoint>");
    fd = strcmp(kind, "raw") ? attach_tracepoint(name, prog_fds[prog]) : bpf_raw_tracepoint_open(name, prog_fds[prog]);
  }
  if (fd < 0) fail_errno("attach", name);
  link_fds[links++] = fd;
}

static void read_map(char *args, int drain) {
  int m;
  if (sscanf(args, "%d", &m) != 1 || m < 0 || m >= maps) fail("usage", "read|drain <map>");
  static unsigned char key[512], next[512], value[1 << 16];
  long vbytes = value_bytes(m);
  if (vbytes > (long)sizeof value || key_sizes[m] > (int)sizeof key) fail("usage", "map entries too large");
  // Entries first gathered, then counted: the count line comes before them.
  size_t cap = 1024, n = 0;
  unsigned char *keys = malloc(cap * key_sizes[m]);
  void *prev = NULL;
  while (bpf_map_get_next_key(map_fds[m], prev, next) == 0) {
    if (n == cap) keys = realloc(keys, (cap *= 2) * key_sizes[m]);
    memcpy(keys + n * key_sizes[m], next, key_sizes[m]);
    n++;
    memcpy(key, next, key_sizes[m]);
    prev = key;
  }
  printf("entries %zu\n", n);
  for (size_t i = 0; i < n; i++) {
    unsigned char *k = keys + i * key_sizes[m];
    if (bpf_map_lookup_elem(map_fds[m], k, value) != 0) memset(value, 0, vbytes);  // deleted since: nothing in it
    put_hex(k, key_sizes[m]);
    putchar(' ');
    put_hex(value, vbytes);
    putchar('\n');
  }
  if (drain) {
    int array = map_types[m] == BPF_MAP_TYPE_ARRAY || map_types[m] == BPF_MAP_TYPE_PERCPU_ARRAY;
    memset(value, 0, vbytes);
    for (size_t i = 0; i < n; i++) {
      unsigned char *k = keys + i * key_sizes[m];
      if (array) bpf_map_update_elem(map_fds[m], k, value, BPF_ANY);
      else bpf_map_delete_elem(map_fds[m], k);
    }
  }
  free(keys);
  puts("end");
  fflush(stdout);
}

static void set_elem(char *args) {
  int m, used;
  if (sscanf(args, "%d %n", &m, &used) < 1 || m < 0 || m >= maps) fail("usage", "set <map> <key> <value>");
  static unsigned char key[512], value[1 << 16];
  char *rest = args + used;
  if (unhex(rest, key, sizeof key) != key_sizes[m]) fail("usage", "a key of the map's size");
  char *space = strchr(rest, ' ');
  if (!space || unhex(space + 1, value, sizeof value) != value_bytes(m)) fail("usage", "a value of the map's size");
  if (bpf_map_update_elem(map_fds[m], key, value, BPF_ANY) != 0) fail_errno("set", "update");
}

int main(void) {
  // Killed with the process that started it: nothing outlives Fay.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 3;
  cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) fail("environment", "cannot tell the number of CPUs");
  // Two descriptors a tracepoint (its program and its attachment): the soft limit (often 1,024) raised to the hard one.
  struct rlimit files;
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  int ready = 0;
  char *line;
  while ((line = next_line(ring))) {
    char *args = strchr(line, ' ');
    args = args ? args + 1 : line + strlen(line);
    if (!ready && !strncmp(line, "map ", 4)) add_map(args);
    else if (!ready && !strncmp(line, "prog ", 5)) add_prog(args);
    else if (!ready && !strncmp(line, "attach ", 7)) attach(args);
    else if (!ready && !strcmp(line, "go")) {
      ready = 1;
      for (int m = 0; m < maps && !ring; m++)
        if (map_types[m] == BPF_MAP_TYPE_RINGBUF && !(ring = ring_buffer__new(map_fds[m], print_event, NULL, NULL))) fail_errno("events", "ring buffer");
      printf("ready %d %d %d %d\n", maps, progs, links, cpus);
      fflush(stdout);
    } else if (ready && !strncmp(line, "read ", 5)) consume_events(), read_map(args, 0);
    else if (ready && !strncmp(line, "drain ", 6)) consume_events(), read_map(args, 1);
    else if (ready && !strncmp(line, "set ", 4)) set_elem(args);
    else if (ready && !strcmp(line, "detach")) {
      // The programs stop firing: what the maps and the ring hold now is all there will be.
      for (int i = links - 1; i >= 0; i--) close(link_fds[i]);
      links = 0;
      puts("detached");
      fflush(stdout);
    } else if (!strcmp(line, "quit")) break;
    else fail("usage", line);
  }
  consume_events();
  ring_buffer__free(ring);
  // Closing the descriptors detaches and frees everything; exiting does the same. The kernel lets
  // go of a program or map a little later (after its last user is gone): a clean exit waits until
  // none of them can be found by id any more, so that "stopped" means nothing is left (at most 2 s).
  for (int i = links - 1; i >= 0; i--) close(link_fds[i]);
  for (int i = 0; i < progs; i++) close(prog_fds[i]);
  for (int i = 0; i < maps; i++) close(map_fds[i]);
  for (int tries = 0; tries < 2000; tries++) {
    int left = 0;
    for (int i = 0; i < progs; i++) {
      int fd = prog_ids[i] ? bpf_prog_get_fd_by_id(prog_ids[i]) : -1;
      if (fd >= 0) left++, close(fd);
    }
    for (int i = 0; i < maps; i++) {
      int fd = map_ids[i] ? bpf_map_get_fd_by_id(map_ids[i]) : -1;
      if (fd >= 0) left++, close(fd);
    }
    if (!left) break;
    usleep(1000);
  }
  return 0;
}
