#include "runtime/mp_table.h"

#include <stddef.h>
#include <stdint.h>

#define MP_FLOATING_SIGNATURE 0x5f504d5fu  // "_MP_"
#define MP_CONFIG_SIGNATURE 0x504d4350u    // "PCMP"
#define MP_ENTRY_PROCESSOR 0
#define MP_PROCESSOR_ENABLED 0x01
#define MP_PROCESSOR_ENTRY_SIZE 20
#define MP_OTHER_ENTRY_SIZE 8
#define MP_ENTRY_TYPE_MAX 4
#define MP_CONFIG_MAX_SIZE 0x10000
#define DEFAULT_LAPIC_PADDR 0xfee00000u

struct __attribute__((packed)) mp_floating_pointer {
  uint32_t signature;
  uint32_t config_paddr;
  uint8_t length;  // in 16-byte units
  uint8_t spec_rev;
  uint8_t checksum;
  uint8_t features[5];
};

struct __attribute__((packed)) mp_config_header {
  uint32_t signature;
  uint16_t base_length;
  uint8_t spec_rev;
  uint8_t checksum;
  char oem_id[8];
  char product_id[12];
  uint32_t oem_table_paddr;
  uint16_t oem_table_size;
  uint16_t entry_count;
  uint32_t lapic_paddr;
  uint16_t extended_length;
  uint8_t extended_checksum;
  uint8_t reserved;
};

struct __attribute__((packed)) mp_processor_entry {
  uint8_t type;
  uint8_t apic_id;
  uint8_t apic_version;
  uint8_t flags;
  uint32_t signature;
  uint32_t features;
  uint32_t reserved[2];
};

static uint8_t sum_bytes(const volatile uint8_t* p, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; ++i) sum = (uint8_t)(sum + p[i]);
  return sum;
}

static const struct mp_floating_pointer* scan(uint32_t start, uint32_t end) {
  for (uint32_t p = start; p + sizeof(struct mp_floating_pointer) <= end;
       p += 16) {
    const struct mp_floating_pointer* fp =
        (const struct mp_floating_pointer*)(uintptr_t)p;
    if (*(const volatile uint32_t*)(uintptr_t)p != MP_FLOATING_SIGNATURE) {
      continue;
    }
    if (fp->length == 1 &&
        sum_bytes((const volatile uint8_t*)fp, sizeof(*fp)) == 0) {
      return fp;
    }
  }
  return 0;
}

static void set_single_cpu(struct mp_info* info) {
  info->cpu_count = 1;
  info->apic_ids[0] = 0;
  info->lapic_paddr = DEFAULT_LAPIC_PADDR;
}

bool mp_find_cpus(struct mp_info* info, const char** why) {
  set_single_cpu(info);
  const struct mp_floating_pointer* fp = scan(0x9fc00, 0xa0000);
  if (fp == 0) fp = scan(0xf0000, 0x100000);
  if (fp == 0) {
    *why = "no valid _MP_ floating pointer";
    return false;
  }
  if (fp->features[0] != 0 || fp->config_paddr == 0) {
    *why = "default configurations are not supported";
    return false;
  }
  const struct mp_config_header* config =
      (const struct mp_config_header*)(uintptr_t)fp->config_paddr;
  if (config->signature != MP_CONFIG_SIGNATURE) {
    *why = "no PCMP signature at the configuration table";
    return false;
  }
  uint32_t length = config->base_length;
  if (length < sizeof(*config) || length > MP_CONFIG_MAX_SIZE) {
    *why = "configuration table length out of range";
    return false;
  }
  if (sum_bytes((const volatile uint8_t*)config, length) != 0) {
    *why = "configuration table checksum mismatch";
    return false;
  }

  uint32_t count = 0;
  uint32_t offset = sizeof(*config);
  const uint8_t* base = (const uint8_t*)config;
  for (uint32_t i = 0; i < config->entry_count && offset < length; ++i) {
    uint8_t type = base[offset];
    uint32_t size = type == MP_ENTRY_PROCESSOR ? MP_PROCESSOR_ENTRY_SIZE
                                               : MP_OTHER_ENTRY_SIZE;
    if (type > MP_ENTRY_TYPE_MAX || offset + size > length) break;
    if (type == MP_ENTRY_PROCESSOR) {
      const struct mp_processor_entry* cpu =
          (const struct mp_processor_entry*)(base + offset);
      if ((cpu->flags & MP_PROCESSOR_ENABLED) && count < MP_MAX_CPUS) {
        info->apic_ids[count++] = cpu->apic_id;
      }
    }
    offset += size;
  }
  if (count == 0) {
    *why = "no enabled processor entries";
    return false;
  }
  info->cpu_count = count;
  if (config->lapic_paddr != 0) info->lapic_paddr = config->lapic_paddr;
  *why = "";
  return true;
}
