/* stash: a ring of held entries that doubles when full. */
#include <stdlib.h>

#include "select_server/stash.h"

struct stash {
    unsigned head, n, cap;        /* oldest at e[head], n of cap in use */
    struct held e[];
};

int stash_push(struct stash **sp, struct held h)
{
    struct stash *s = *sp;
    if (s == NULL || s->n == s->cap) {
        unsigned cap = s == NULL ? 8 : s->cap * 2;
        struct stash *t = malloc(sizeof *t + cap * sizeof t->e[0]);
        if (t == NULL)
            return -1;
        t->head = 0;
        t->n = 0;
        t->cap = cap;
        for (unsigned i = 0; s != NULL && i < s->n; i++)      /* oldest first, unwrapped */
            t->e[t->n++] = s->e[(s->head + i) % s->cap];
        free(s);
        *sp = s = t;
    }
    unsigned at = s->head + s->n;          /* head < cap and n < cap: one wrap at most */
    if (at >= s->cap)
        at -= s->cap;
    s->e[at] = h;
    s->n++;
    return 0;
}

int stash_pop(struct stash *s, struct held *h)
{
    if (s == NULL || s->n == 0)
        return 0;
    *h = s->e[s->head];
    s->head = s->head + 1 == s->cap ? 0 : s->head + 1;
    s->n--;
    return 1;
}

unsigned stash_len(const struct stash *s)
{
    return s == NULL ? 0 : s->n;
}

void stash_free(struct stash **sp)
{
    free(*sp);
    *sp = NULL;
}
