window.YTD.account.part0 = [
  {
    "account" : {
      "email" : "tova@leakyjoint.example",
      "createdVia" : "web",
      "username" : "tovapipes",
      "accountId" : "1203948571029384756",
      "createdAt" : "2019-12-09T10:41:12.000Z",
      "accountDisplayName" : "Tova Brannock 🌊"
    }
  }
]