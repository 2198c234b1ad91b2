#include "runtime/ioapic.h"

#include "runtime/io.h"

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_REG_VERSION 0x01
#define IOAPIC_REG_REDIRECTION 0x10
#define REDIR_ACTIVE_LOW (1u << 13)
#define REDIR_LEVEL (1u << 14)
#define REDIR_MASKED (1u << 16)

static uint32_t read_reg(const struct ioapic* ioapic, uint32_t reg) {
  mmio_write32(ioapic->paddr + IOAPIC_REGSEL, reg);
  return mmio_read32(ioapic->paddr + IOAPIC_WINDOW);
}

static void write_reg(const struct ioapic* ioapic, uint32_t reg,
                      uint32_t value) {
  mmio_write32(ioapic->paddr + IOAPIC_REGSEL, reg);
  mmio_write32(ioapic->paddr + IOAPIC_WINDOW, value);
}

uint32_t ioapic_pins(const struct ioapic* ioapic) {
  return ((read_reg(ioapic, IOAPIC_REG_VERSION) >> 16) & 0xff) + 1;
}

static bool pin_of(const struct ioapic* ioapic, uint32_t gsi, uint32_t* pin) {
  if (gsi < ioapic->gsi_base) return false;
  *pin = gsi - ioapic->gsi_base;
  return *pin < ioapic_pins(ioapic);
}

bool ioapic_route(const struct ioapic* ioapic, uint32_t gsi, uint8_t vector,
                  uint8_t dest, bool level, bool active_low) {
  uint32_t pin;
  if (!pin_of(ioapic, gsi, &pin)) return false;
  uint32_t low = vector | (level ? REDIR_LEVEL : 0) |
                 (active_low ? REDIR_ACTIVE_LOW : 0);
  // Masked while the halves change, so no half-written entry fires.
  write_reg(ioapic, IOAPIC_REG_REDIRECTION + 2 * pin, REDIR_MASKED);
  write_reg(ioapic, IOAPIC_REG_REDIRECTION + 2 * pin + 1, (uint32_t)dest << 24);
  write_reg(ioapic, IOAPIC_REG_REDIRECTION + 2 * pin, low);
  return true;
}

void ioapic_mask(const struct ioapic* ioapic, uint32_t gsi) {
  uint32_t pin;
  if (!pin_of(ioapic, gsi, &pin)) return;
  write_reg(ioapic, IOAPIC_REG_REDIRECTION + 2 * pin, REDIR_MASKED);
}
