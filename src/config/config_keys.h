/*
 * Private to src/config: the key table behind taskrel/config.h and
 * what can be done with one key. config_keys.c holds the table and looks keys
 * up; config_values.c parses, prints and describes single values; config.c
 * holds the sources (defaults, INI files, --set) and the sinks (validation,
 * INI and markdown writers).
 */
#ifndef TASKREL_TRAIN_CONFIG_KEYS_H
#define TASKREL_TRAIN_CONFIG_KEYS_H

#include "taskrel/config.h"

typedef enum {
    TR_CFG_INT,
    TR_CFG_INT64,
    TR_CFG_UINT64,
    TR_CFG_FLOAT,
    TR_CFG_BOOL,
    TR_CFG_STRING,
    TR_CFG_ENUM,
    TR_CFG_INT_LIST,   /* int array; aux = offset of its entry count */
    TR_CFG_FLOAT_LIST, /* float array (TR_MAX_TASKS); aux = offset of its entry count */
    TR_CFG_SET,        /* unsigned bitmask: bit i for names[i]; comma-separated, any order */
    TR_CFG_TASKS,      /* tr_task_select: "" all, N the first N, or names */
} tr_cfg_type;

/* Range flags: which bounds exist and whether they are open. */
enum { TR_CFG_LO = 1, TR_CFG_HI = 2, TR_CFG_LO_OPEN = 4, TR_CFG_HI_OPEN = 8 };

typedef struct {
    const char *section, *name;
    tr_cfg_type type;
    size_t off;      /* offsetof(tr_config, field) */
    size_t aux;      /* string: buffer size; int and float lists: offset of the count */
    const char *def; /* default, as text */
    unsigned range;  /* TR_CFG_LO... flags, for numbers and list entries */
    double lo, hi;
    const char *const *names; /* enum and set: names indexed by the C enum value or bit,
                                 NULL-terminated */
    const char *doc;
} tr_cfg_key;

typedef struct {
    const char *name, *doc;
} tr_cfg_section;

#define TR_CFG_MAX_KEYS 160

extern const tr_cfg_key tr_cfg_keys[]; /* writers list them in this order per section */
extern const int tr_cfg_nkeys;
extern const tr_cfg_section tr_cfg_sections[];
extern const int tr_cfg_nsections;
extern const char *const tr_cfg_type_names[];
/* train.gamma's default when train.schedule = inv (the table's default otherwise). */
extern const char *const tr_cfg_gamma_inv_default;

const tr_cfg_key *tr_cfg_find(const char *section, const char *name); /* NULL if unknown */
/* Set key k of c from text: 0 ok, else err gets the reason (without the key name). */
int tr_cfg_parse(tr_config *c, const tr_cfg_key *k, const char *text, char *err, size_t errn);
/* Text of key k's value in c (reads back to the same value). */
void tr_cfg_format(const tr_config *c, const tr_cfg_key *k, char *buf, size_t n);
/* Range or enum values of k for docs, enum names joined by sep. */
void tr_cfg_domain(const tr_cfg_key *k, const char *sep, char *buf, size_t n);
/* Comma-separated numbers into v[0..*n), at most cap, each in k's range: 0 ok. */
int tr_cfg_parse_list(const tr_cfg_key *k, const char *s, double *v, int cap, int *n, char *err,
                      size_t errn);
int tr_cfg_parse_float(const char *s, float *out); /* whole string, finite: 0 ok */
/* err = "unknown key|section ... (did you mean ...?)" */
void tr_cfg_unknown(const char *section, const char *name, char *err, size_t errn);

#endif
