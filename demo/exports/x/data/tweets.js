window.YTD.tweets.part0 = [
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1853494538925140652"
          ],
          "editableUntil" : "2024-11-04T18:48:29.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "115"
      ],
      "favorite_count" : "4",
      "id_str" : "1853494538925140652",
      "truncated" : false,
      "retweet_count" : "2",
      "id" : "1853494538925140652",
      "created_at" : "Mon Nov 04 17:48:29 +0000 2024",
      "favorited" : false,
      "full_text" : "paddled pelican round the north skerries today. flat water, no pager, one seal with opinions. keep your pipes dry 🛶",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1848260479546444733"
          ],
          "editableUntil" : "2024-10-21T08:10:12.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : [
          {
            "url" : "https://t.co/wGOx9EwhWl",
            "expanded_url" : "{{BASE_URL}}/blog/small-dags-small-blast-radius/",
            "display_url" : "{{BASE_HOST}}/blog/small-dags-small-bla…",
            "indices" : [
              "130",
              "153"
            ]
          }
        ]
      },
      "display_text_range" : [
        "0",
        "153"
      ],
      "favorite_count" : "18",
      "id_str" : "1848260479546444733",
      "truncated" : false,
      "retweet_count" : "7",
      "id" : "1848260479546444733",
      "created_at" : "Mon Oct 21 07:10:12 +0000 2024",
      "favorited" : false,
      "full_text" : "new post: small dags, small blast radius. one graph per thing a human cares about, connected through data instead of task wiring. https://t.co/wGOx9EwhWl",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1833430943134788814"
          ],
          "editableUntil" : "2024-09-10T10:02:55.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Debs Farrow",
            "screen_name" : "debs_on_data",
            "indices" : [
              "3",
              "16"
            ],
            "id_str" : "1122334455667788990",
            "id" : "1122334455667788990"
          },
          {
            "name" : "Tova Brannock 🌊",
            "screen_name" : "tovapipes",
            "indices" : [
              "26",
              "36"
            ],
            "id_str" : "1203948571029384756",
            "id" : "1203948571029384756"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "138"
      ],
      "favorite_count" : "7",
      "id_str" : "1833430943134788814",
      "truncated" : false,
      "retweet_count" : "10",
      "id" : "1833430943134788814",
      "created_at" : "Tue Sep 10 09:02:55 +0000 2024",
      "favorited" : false,
      "full_text" : "RT @debs_on_data: Reading @tovapipes on measuring before mopping and feeling personally attacked by the bit about 400 alerts nobody reads.",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1823333680542780895"
          ],
          "editableUntil" : "2024-08-13T13:20:00.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "72"
      ],
      "favorite_count" : "38",
      "id_str" : "1823333680542780895",
      "truncated" : false,
      "retweet_count" : "4",
      "id" : "1823333680542780895",
      "created_at" : "Tue Aug 13 12:20:00 +0000 2024",
      "favorited" : false,
      "full_text" : "if your dashboard needs a tour guide it's not a dashboard, it's a museum",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1805508060510321879"
          ],
          "editableUntil" : "2024-06-25T08:47:21.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "116"
      ],
      "favorite_count" : "22",
      "in_reply_to_status_id_str" : "1805507863378025960",
      "id_str" : "1805508060510321879",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "5",
      "id" : "1805508060510321879",
      "in_reply_to_status_id" : "1805507863378025960",
      "created_at" : "Tue Jun 25 07:47:21 +0000 2024",
      "favorited" : false,
      "full_text" : "4/ is the contract in the same diff? if the schema changed and the contract didn't, the promise is now a lie. /fin 🛶",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1805507863378025960"
          ],
          "editableUntil" : "2024-06-25T08:46:34.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "130"
      ],
      "favorite_count" : "2",
      "in_reply_to_status_id_str" : "1805507666245730041",
      "id_str" : "1805507863378025960",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1805507863378025960",
      "in_reply_to_status_id" : "1805507666245730041",
      "created_at" : "Tue Jun 25 07:46:34 +0000 2024",
      "favorited" : false,
      "full_text" : "3/ did a meaning change? vat included → excluded is a new column with a new name, not an edit. meanings don't get edited in place.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1805507666245730041"
          ],
          "editableUntil" : "2024-06-25T08:45:47.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "117"
      ],
      "favorite_count" : "25",
      "in_reply_to_status_id_str" : "1805507469113434122",
      "id_str" : "1805507666245730041",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1805507666245730041",
      "in_reply_to_status_id" : "1805507469113434122",
      "created_at" : "Tue Jun 25 07:45:47 +0000 2024",
      "favorited" : false,
      "full_text" : "2/ is anything renamed? renames are breakups. add the new column, fill both, announce, wait, then retire the old one.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1805507469113434122"
          ],
          "editableUntil" : "2024-06-25T08:45:00.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "68"
      ],
      "favorite_count" : "39",
      "id_str" : "1805507469113434122",
      "truncated" : false,
      "retweet_count" : "9",
      "id" : "1805507469113434122",
      "created_at" : "Tue Jun 25 07:45:00 +0000 2024",
      "favorited" : false,
      "full_text" : "things i check before i approve a schema change on a shared table 1/",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1790475066799156976"
          ],
          "editableUntil" : "2024-05-14T21:11:36.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Harbour Data Meetup",
            "screen_name" : "harbourdata",
            "indices" : [
              "0",
              "12"
            ],
            "id_str" : "1432109876543210987",
            "id" : "1432109876543210987"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "13",
        "118"
      ],
      "favorite_count" : "44",
      "in_reply_to_status_id_str" : "1790469278663596476",
      "id_str" : "1790475066799156976",
      "in_reply_to_user_id" : "1432109876543210987",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1790475066799156976",
      "in_reply_to_status_id" : "1790469278663596476",
      "created_at" : "Tue May 14 20:11:36 +0000 2024",
      "favorited" : false,
      "full_text" : "@harbourdata thank you for having me! slides are on the blog soon, minus the backflow valve pun, which only works live",
      "lang" : "en",
      "in_reply_to_screen_name" : "harbourdata",
      "in_reply_to_user_id_str" : "1432109876543210987"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1778096174134309138"
          ],
          "editableUntil" : "2024-04-10T17:22:18.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Kofi Mensah-Lund",
            "screen_name" : "kofi_builds",
            "indices" : [
              "3",
              "15"
            ],
            "id_str" : "987123456789012345",
            "id" : "987123456789012345"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "140"
      ],
      "favorite_count" : "1",
      "id_str" : "1778096174134309138",
      "truncated" : false,
      "retweet_count" : "7",
      "id" : "1778096174134309138",
      "created_at" : "Wed Apr 10 16:22:18 +0000 2024",
      "favorited" : false,
      "full_text" : "RT @kofi_builds: Hot take: the most valuable data tool my team adopted this year was a shared doc titled 'what each column actually means'.…",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1769998424339485219"
          ],
          "editableUntil" : "2024-03-19T09:04:44.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "97"
      ],
      "favorite_count" : "8",
      "id_str" : "1769998424339485219",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1769998424339485219",
      "created_at" : "Tue Mar 19 08:04:44 +0000 2024",
      "favorited" : false,
      "full_text" : "exactly-once delivery is a rumour. at-least-once + idempotent writes &gt; any vendor slide i've seen",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1764981260809237300"
          ],
          "editableUntil" : "2024-03-05T12:48:19.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Debs Farrow",
            "screen_name" : "debs_on_data",
            "indices" : [
              "0",
              "13"
            ],
            "id_str" : "1122334455667788990",
            "id" : "1122334455667788990"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "14",
        "152"
      ],
      "favorite_count" : "6",
      "in_reply_to_status_id_str" : "1764975472673676800",
      "id_str" : "1764981260809237300",
      "in_reply_to_user_id" : "1122334455667788990",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1764981260809237300",
      "in_reply_to_status_id" : "1764975472673676800",
      "created_at" : "Tue Mar 05 11:48:19 +0000 2024",
      "favorited" : false,
      "full_text" : "@debs_on_data no ui, on purpose. if a check needs a dashboard to explain itself it's too clever. the report is plain text so it fits in a pager message.",
      "lang" : "en",
      "in_reply_to_screen_name" : "debs_on_data",
      "in_reply_to_user_id_str" : "1122334455667788990"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1764946540360717381"
          ],
          "editableUntil" : "2024-03-05T10:30:21.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [
          {
            "text" : "python",
            "indices" : [
              "176",
              "183"
            ]
          },
          {
            "text" : "dataengineering",
            "indices" : [
              "184",
              "200"
            ]
          }
        ],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : [
          {
            "url" : "https://t.co/4ff3ltZJpG",
            "expanded_url" : "{{BASE_URL}}/git/demo-repo.git",
            "display_url" : "{{BASE_HOST}}/git/demo-repo.git",
            "indices" : [
              "152",
              "175"
            ]
          }
        ]
      },
      "display_text_range" : [
        "0",
        "200"
      ],
      "favorite_count" : "39",
      "id_str" : "1764946540360717381",
      "truncated" : false,
      "retweet_count" : "6",
      "id" : "1764946540360717381",
      "created_at" : "Tue Mar 05 09:30:21 +0000 2024",
      "favorited" : false,
      "full_text" : "leakcheck is out: tiny data-contract checks for batch pipelines. columns, nulls, freshness, volume. ~300 lines of python, no server, boring on purpose. https://t.co/4ff3ltZJpG #python #dataengineering",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1757306896643821848"
          ],
          "editableUntil" : "2024-02-13T08:33:08.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "97"
      ],
      "favorite_count" : "48",
      "in_reply_to_status_id_str" : "1757306699511525929",
      "id_str" : "1757306896643821848",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1757306896643821848",
      "in_reply_to_status_id" : "1757306699511525929",
      "created_at" : "Tue Feb 13 07:33:08 +0000 2024",
      "favorited" : false,
      "full_text" : "5/ total cost: two afternoons and one very satisfying graph. read your query plans, folks. /fin 🛶",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1757306699511525929"
          ],
          "editableUntil" : "2024-02-13T08:32:21.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "116"
      ],
      "favorite_count" : "54",
      "in_reply_to_status_id_str" : "1757306502379230010",
      "id_str" : "1757306699511525929",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1757306699511525929",
      "in_reply_to_status_id" : "1757306502379230010",
      "created_at" : "Tue Feb 13 07:32:21 +0000 2024",
      "favorited" : false,
      "full_text" : "4/ then: stopped rebuilding eight years of history every night. replace yesterday's partition only. 55 min → 11 min.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1757306502379230010"
          ],
          "editableUntil" : "2024-02-13T08:31:34.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "106"
      ],
      "favorite_count" : "36",
      "in_reply_to_status_id_str" : "1757306305246934091",
      "id_str" : "1757306502379230010",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "4",
      "id" : "1757306502379230010",
      "in_reply_to_status_id" : "1757306305246934091",
      "created_at" : "Tue Feb 13 07:31:34 +0000 2024",
      "favorited" : false,
      "full_text" : "3/ aggregated passengers per booking before the join instead of after. 4h → 55 min. one cte. no new tools.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1757306305246934091"
          ],
          "editableUntil" : "2024-02-13T08:30:47.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "168"
      ],
      "favorite_count" : "15",
      "in_reply_to_status_id_str" : "1757306108114638172",
      "id_str" : "1757306305246934091",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1757306305246934091",
      "in_reply_to_status_id" : "1757306108114638172",
      "created_at" : "Tue Feb 13 07:30:47 +0000 2024",
      "favorited" : false,
      "full_text" : "2/ first: measured. 3h20 of the 4 hours was one join that fanned out, booking × passenger × leg, then got grouped back down. nobody had looked at the plan in two years.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1757306108114638172"
          ],
          "editableUntil" : "2024-02-13T08:30:00.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "79"
      ],
      "favorite_count" : "2",
      "id_str" : "1757306108114638172",
      "truncated" : false,
      "retweet_count" : "5",
      "id" : "1757306108114638172",
      "created_at" : "Tue Feb 13 07:30:00 +0000 2024",
      "favorited" : false,
      "full_text" : "how we took a nightly job from 4 hours to 11 minutes without buying anything 1/",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1731059424556029543"
          ],
          "editableUntil" : "2023-12-02T22:15:03.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "122"
      ],
      "favorite_count" : "3",
      "id_str" : "1731059424556029543",
      "truncated" : false,
      "retweet_count" : "5",
      "id" : "1731059424556029543",
      "created_at" : "Sat Dec 02 21:15:03 +0000 2023",
      "favorited" : false,
      "full_text" : "the cat (backfill) has learned that the pager sound means i'll be awake anyway, so breakfast is now negotiable at any hour",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1721468158604277624"
          ],
          "editableUntil" : "2023-11-06T11:02:47.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Kofi Mensah-Lund",
            "screen_name" : "kofi_builds",
            "indices" : [
              "0",
              "12"
            ],
            "id_str" : "987123456789012345",
            "id" : "987123456789012345"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "13",
        "157"
      ],
      "favorite_count" : "13",
      "in_reply_to_status_id_str" : "1721462370468717124",
      "id_str" : "1721468158604277624",
      "in_reply_to_user_id" : "987123456789012345",
      "truncated" : false,
      "retweet_count" : "2",
      "id" : "1721468158604277624",
      "in_reply_to_status_id" : "1721462370468717124",
      "created_at" : "Mon Nov 06 10:02:47 +0000 2023",
      "favorited" : false,
      "full_text" : "@kofi_builds ha, yes. a merge on (customer_id, loaded_at) is the most polite way to duplicate a table i know of. the merge works perfectly, the key is lying.",
      "lang" : "en",
      "in_reply_to_screen_name" : "kofi_builds",
      "in_reply_to_user_id_str" : "987123456789012345"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1721448625730541705"
          ],
          "editableUntil" : "2023-11-06T09:45:10.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [
          {
            "text" : "dataengineering",
            "indices" : [
              "161",
              "177"
            ]
          },
          {
            "text" : "sql",
            "indices" : [
              "178",
              "182"
            ]
          }
        ],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : [
          {
            "url" : "https://t.co/A2w9maO4MX",
            "expanded_url" : "{{BASE_URL}}/blog/idempotency-is-a-love-letter/",
            "display_url" : "{{BASE_HOST}}/blog/idempotency-is-a-lov…",
            "indices" : [
              "137",
              "160"
            ]
          }
        ]
      },
      "display_text_range" : [
        "0",
        "182"
      ],
      "favorite_count" : "7",
      "id_str" : "1721448625730541705",
      "truncated" : false,
      "retweet_count" : "10",
      "id" : "1721448625730541705",
      "created_at" : "Mon Nov 06 08:45:10 +0000 2023",
      "favorited" : false,
      "full_text" : "new on the blog: idempotency is a love letter to future you. replace the partition, merge on a real key, keep a ledger for side effects. https://t.co/A2w9maO4MX #dataengineering #sql",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1709100598948837786"
          ],
          "editableUntil" : "2023-10-03T07:58:31.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "93"
      ],
      "favorite_count" : "4",
      "id_str" : "1709100598948837786",
      "truncated" : false,
      "retweet_count" : "1",
      "id" : "1709100598948837786",
      "created_at" : "Tue Oct 03 06:58:31 +0000 2023",
      "favorited" : false,
      "full_text" : "every 'quick one-off script' in prod is a pipeline that hasn't been introduced to on-call yet",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1706393137968093867"
          ],
          "editableUntil" : "2023-09-25T20:40:02.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [
          {
            "name" : "Harbour Data Meetup",
            "screen_name" : "harbourdata",
            "indices" : [
              "3",
              "15"
            ],
            "id_str" : "1432109876543210987",
            "id" : "1432109876543210987"
          }
        ],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "140"
      ],
      "favorite_count" : "24",
      "id_str" : "1706393137968093867",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1706393137968093867",
      "created_at" : "Mon Sep 25 19:40:02 +0000 2023",
      "favorited" : false,
      "full_text" : "RT @harbourdata: Next Harbour Data Meetup: 12 October, lightning talks on pipelines that broke and what we learnt. Pizza, no slides over 10…",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1701506715088146708"
          ],
          "editableUntil" : "2023-09-12T09:03:08.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "120"
      ],
      "favorite_count" : "26",
      "in_reply_to_status_id_str" : "1701506517955850789",
      "id_str" : "1701506715088146708",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "5",
      "id" : "1701506715088146708",
      "in_reply_to_status_id" : "1701506517955850789",
      "created_at" : "Tue Sep 12 08:03:08 +0000 2023",
      "favorited" : false,
      "full_text" : "5/ everything else (null rates, distributions, means) goes in a report on monday. measure broadly, page narrowly. /fin 🛶",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1701506517955850789"
          ],
          "editableUntil" : "2023-09-12T09:02:21.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "98"
      ],
      "favorite_count" : "46",
      "in_reply_to_status_id_str" : "1701506320823554870",
      "id_str" : "1701506517955850789",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "8",
      "id" : "1701506517955850789",
      "in_reply_to_status_id" : "1701506320823554870",
      "created_at" : "Tue Sep 12 08:02:21 +0000 2023",
      "favorited" : false,
      "full_text" : "4/ schema: did a column appear, vanish or change type? new = fyi. gone or retyped = stop the load.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1701506320823554870"
          ],
          "editableUntil" : "2023-09-12T09:01:34.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "150"
      ],
      "favorite_count" : "12",
      "in_reply_to_status_id_str" : "1701506123691258951",
      "id_str" : "1701506320823554870",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "3",
      "id" : "1701506320823554870",
      "in_reply_to_status_id" : "1701506123691258951",
      "created_at" : "Tue Sep 12 08:01:34 +0000 2023",
      "favorited" : false,
      "full_text" : "3/ volume: is yesterday's row count normal for that weekday? ferries on a tuesday in february &amp; a saturday in july differ by 6x. fixed thresholds lie.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1701506123691258951"
          ],
          "editableUntil" : "2023-09-12T09:00:47.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : false
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "150"
      ],
      "favorite_count" : "44",
      "in_reply_to_status_id_str" : "1701505926558963032",
      "id_str" : "1701506123691258951",
      "in_reply_to_user_id" : "1203948571029384756",
      "truncated" : false,
      "retweet_count" : "8",
      "id" : "1701506123691258951",
      "in_reply_to_status_id" : "1701505926558963032",
      "created_at" : "Tue Sep 12 08:00:47 +0000 2023",
      "favorited" : false,
      "full_text" : "2/ freshness: how old is the newest row? use the business timestamp, not loaded_at. a job can succeed every 5 minutes and reload yesterday every time.",
      "lang" : "en",
      "in_reply_to_screen_name" : "tovapipes",
      "in_reply_to_user_id_str" : "1203948571029384756"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1701505926558963032"
          ],
          "editableUntil" : "2023-09-12T09:00:00.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "83"
      ],
      "favorite_count" : "12",
      "id_str" : "1701505926558963032",
      "truncated" : false,
      "retweet_count" : "11",
      "id" : "1701505926558963032",
      "created_at" : "Tue Sep 12 08:00:00 +0000 2023",
      "favorited" : false,
      "full_text" : "the three numbers i alert on for every table we own, and nothing else (thread) 🌊 1/",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1686709911024590029"
          ],
          "editableUntil" : "2023-08-02T13:05:55.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [
          {
            "text" : "dataengineering",
            "indices" : [
              "172",
              "188"
            ]
          }
        ],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "188"
      ],
      "favorite_count" : "2",
      "id_str" : "1686709911024590029",
      "truncated" : false,
      "retweet_count" : "5",
      "id" : "1686709911024590029",
      "created_at" : "Wed Aug 02 12:05:55 +0000 2023",
      "favorited" : false,
      "full_text" : "timezones are where good intentions go to get an off-by-one-hour error. store the instant in utc, store the zone name next to it, never store an offset and call it a zone. #dataengineering",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1676297610064838110"
          ],
          "editableUntil" : "2023-07-04T19:31:09.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "46"
      ],
      "favorite_count" : "47",
      "id_str" : "1676297610064838110",
      "truncated" : false,
      "retweet_count" : "4",
      "id" : "1676297610064838110",
      "created_at" : "Tue Jul 04 18:31:09 +0000 2023",
      "favorited" : false,
      "full_text" : "NULL is not a value. it's a shrug with a type.",
      "lang" : "en"
    }
  },
  {
    "tweet" : {
      "edit_info" : {
        "initial" : {
          "editTweetIds" : [
            "1671053434024894191"
          ],
          "editableUntil" : "2023-06-20T08:12:40.000Z",
          "editsRemaining" : "5",
          "isEditEligible" : true
        }
      },
      "retweeted" : false,
      "source" : "<a href=\"https://mobile.twitter.com\" rel=\"nofollow\">Twitter Web App</a>",
      "entities" : {
        "hashtags" : [],
        "symbols" : [],
        "user_mentions" : [],
        "urls" : []
      },
      "display_text_range" : [
        "0",
        "106"
      ],
      "favorite_count" : "1",
      "id_str" : "1671053434024894191",
      "truncated" : false,
      "retweet_count" : "0",
      "id" : "1671053434024894191",
      "created_at" : "Tue Jun 20 07:12:40 +0000 2023",
      "favorited" : false,
      "full_text" : "boring is a feature. i will die on this hill, and the hill will be a postgres instance with good backups 🌊",
      "lang" : "en"
    }
  }
]