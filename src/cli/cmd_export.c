/*
 * taskrel export csv RUN_DIR [-o FILE.csv]: a run's metrics.jsonl as CSV,
 * one row per step, kind and task: step,kind,task,lr,loss,<metric>
 * (kind "train": that step's loss, every train.log_every steps; "val": the
 * validation's loss and metric). stdout without -o. Serial, read-only.
 */
#include <math.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static void csv_field(FILE *f, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void csv_number(FILE *f, double v) {
    if (isfinite(v))
        fprintf(f, "%.9g", v);
}

static void write_csv(FILE *f, const tr_metrics *m) {
    fprintf(f, "step,kind,task,lr,loss,%s\n", m->metric);
    for (int i = 0; i < m->n; i++) {
        const tr_metrics_row *r = &m->rows[i];
        for (int t = 0; t < m->T; t++) {
            fprintf(f, "%lld,%s,", (long long)r->step, r->train ? "train" : "val");
            csv_field(f, m->names[t]);
            fputc(',', f);
            csv_number(f, r->lr);
            fputc(',', f);
            csv_number(f, r->loss[t]);
            fputc(',', f);
            csv_number(f, r->metric[t]);
            fputc('\n', f);
        }
    }
}

tr_status tr_cmd_export(int argc, char **argv) {
    static const tr_cli_option opts[] = {{"out", 'o', 1, 'o'}};
    tr_cli_args a;
    TR_CALL(tr_cli_parse(&a, "export", opts, 1, argc, argv));
    const char *what = a.npos > 0 ? a.pos[0] : NULL, *run = a.npos > 1 ? a.pos[1] : NULL;
    const char *extra = a.npos > 2 ? a.pos[2] : NULL, *out = a.nopts > 0 ? a.opts[0].value : NULL;
    int help = a.help;
    tr_status st = TR_OK;
    if (help || !what) {
        printf("usage: taskrel export csv RUN_DIR [-o FILE.csv]\n"
               "The run's metrics.jsonl as CSV (stdout without -o): step,kind,task,lr,loss,\n"
               "acc|mse; kind is train (every train.log_every steps) or val.\n");
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          help ? "help shown" : "export needs a format (csv)");
    } else if (strcmp(what, "csv") != 0) {
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "unknown export format '%s' (available: csv)", what);
    } else if (!run || extra) {
        st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__,
                          "usage: taskrel export csv RUN_DIR [-o FILE.csv]");
    }
    tr_metrics m = {0};
    if (st == TR_OK)
        st = tr_metrics_read(run, &m);
    if (st == TR_OK) {
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f) {
            st = tr_error_set(TR_ERR_USAGE, __FILE__, __LINE__, __func__, "cannot write %s", out);
        } else {
            write_csv(f, &m);
            if (out && fclose(f) != 0)
                st = tr_error_set(TR_ERR_IO, __FILE__, __LINE__, __func__, "cannot write %s", out);
            if (!out)
                fflush(stdout);
        }
    }
    tr_metrics_free(&m);
    tr_cli_args_free(&a);
    return st;
}
